//! Patient links: which local patient ids stand for an NHS number at each partner.
//! The federation uses this table as its cache; `verified_at` gives the time to live.

use diesel::prelude::*;

use super::schema::patient_links::dsl as pl;
use super::{AnyConnection, StoreError, retrying, write_transaction};

/// `local_id` value recording that a partner has no record for the NHS number.
const NOT_KNOWN: &str = "";

/// What was last learned of one NHS number at one partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerLink {
    pub partner_id: String,
    /// Empty: the partner holds no record of the patient.
    pub local_ids: Vec<String>,
    pub verified_at: i64,
}

/// Links of `nhs` verified at or after `fresh_since`, per partner.
pub fn fresh_links(
    conn: &mut AnyConnection,
    nhs: &str,
    fresh_since: i64,
) -> Result<Vec<PartnerLink>, StoreError> {
    let rows: Vec<(String, String, i64)> = pl::patient_links
        .filter(pl::nhs_number.eq(nhs))
        .filter(pl::verified_at.ge(fresh_since))
        .order((pl::partner_id, pl::local_id))
        .select((pl::partner_id, pl::local_id, pl::verified_at))
        .load(conn)?;
    let mut links: Vec<PartnerLink> = Vec::new();
    for (partner_id, local_id, verified_at) in rows {
        if links.last().is_none_or(|l| l.partner_id != partner_id) {
            links.push(PartnerLink {
                partner_id,
                local_ids: Vec::new(),
                verified_at,
            });
        }
        let link = links.last_mut().expect("pushed above");
        link.verified_at = link.verified_at.min(verified_at);
        if local_id != NOT_KNOWN {
            link.local_ids.push(local_id);
        }
    }
    Ok(links)
}

/// Replaces what is known of `nhs` at `partner_id` with `local_ids` (empty: not known).
pub fn replace(
    conn: &mut AnyConnection,
    nhs: &str,
    partner_id: &str,
    local_ids: &[String],
    at: i64,
) -> Result<(), StoreError> {
    retrying(|| {
        write_transaction(conn, |conn| {
            diesel::delete(
                pl::patient_links
                    .filter(pl::nhs_number.eq(nhs))
                    .filter(pl::partner_id.eq(partner_id)),
            )
            .execute(conn)?;
            let ids: Vec<&str> = if local_ids.is_empty() {
                vec![NOT_KNOWN]
            } else {
                local_ids.iter().map(String::as_str).collect()
            };
            for local_id in ids {
                diesel::insert_into(pl::patient_links)
                    .values((
                        pl::nhs_number.eq(nhs),
                        pl::partner_id.eq(partner_id),
                        pl::local_id.eq(local_id),
                        pl::verified_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
    })
}

/// The NHS number behind a partner's local patient id, if verified since `fresh_since`.
pub fn nhs_number_for(
    conn: &mut AnyConnection,
    partner_id: &str,
    local_id: &str,
    fresh_since: i64,
) -> Result<Option<String>, StoreError> {
    Ok(pl::patient_links
        .filter(pl::partner_id.eq(partner_id))
        .filter(pl::local_id.eq(local_id))
        .filter(pl::verified_at.ge(fresh_since))
        .select(pl::nhs_number)
        .load(conn)?
        .pop())
}
