//! Objections to sharing, with full history: every change is a new version, and the
//! database refuses updates and deletes.

use diesel::prelude::*;

use super::schema::objections::dsl as o;
use super::{AnyConnection, StoreError, now_ms, retrying, write_transaction};

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct ObjectionVersion {
    pub nhs_number: String,
    pub version: i32,
    /// FHIR Consent.status: proposed (under review), active, inactive, entered-in-error...
    pub status: String,
    pub recorded_at: i64,
    pub recorded_by: String,
    /// The Consent resource as recorded, JSON.
    pub consent: String,
}

/// Records a new version of the patient's objection; returns its version number.
/// Concurrent writers for the same patient cannot both take a version: the loser
/// retries with the next.
pub fn record(
    conn: &mut AnyConnection,
    nhs: &str,
    status: &str,
    recorded_by: &str,
    consent: &str,
) -> Result<i32, StoreError> {
    retrying(|| {
        write_transaction(conn, |conn| {
            let latest: Option<i32> = o::objections
                .filter(o::nhs_number.eq(nhs))
                .select(diesel::dsl::max(o::version))
                .get_result(conn)?;
            let version = latest.unwrap_or(0) + 1;
            diesel::insert_into(o::objections)
                .values((
                    o::nhs_number.eq(nhs),
                    o::version.eq(version),
                    o::status.eq(status),
                    o::recorded_at.eq(now_ms()),
                    o::recorded_by.eq(recorded_by),
                    o::consent.eq(consent),
                ))
                .execute(conn)?;
            Ok::<_, diesel::result::Error>(version)
        })
    })
}

/// Records the first version of the patient's objection, atomically: `Ok(None)` if
/// one is already recorded (a concurrent create lost the race), never a second
/// "first" version.
pub fn create(
    conn: &mut AnyConnection,
    nhs: &str,
    status: &str,
    recorded_by: &str,
    consent: &str,
) -> Result<Option<i32>, StoreError> {
    use diesel::result::{DatabaseErrorKind, Error};
    let inserted = diesel::insert_into(o::objections)
        .values((
            o::nhs_number.eq(nhs),
            o::version.eq(1),
            o::status.eq(status),
            o::recorded_at.eq(now_ms()),
            o::recorded_by.eq(recorded_by),
            o::consent.eq(consent),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(Some(1)),
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records `version` exactly, the version after the one the client read
/// (`If-Match`): `Ok(false)` if another change took that number first, so that of
/// two officers' racing updates to the same version one wins and one is told.
pub fn record_after(
    conn: &mut AnyConnection,
    nhs: &str,
    read_version: i32,
    status: &str,
    recorded_by: &str,
    consent: &str,
) -> Result<bool, StoreError> {
    // A lost race (the same version inserted first, or SQLite locked) runs again,
    // and then finds the version taken.
    retrying(|| {
        write_transaction(conn, |conn| {
            let latest: Option<i32> = o::objections
                .filter(o::nhs_number.eq(nhs))
                .select(diesel::dsl::max(o::version))
                .get_result(conn)?;
            if latest != Some(read_version) {
                return Ok(false);
            }
            diesel::insert_into(o::objections)
                .values((
                    o::nhs_number.eq(nhs),
                    o::version.eq(read_version + 1),
                    o::status.eq(status),
                    o::recorded_at.eq(now_ms()),
                    o::recorded_by.eq(recorded_by),
                    o::consent.eq(consent),
                ))
                .execute(conn)?;
            Ok::<_, diesel::result::Error>(true)
        })
    })
}

/// Every version for the patient, oldest first.
pub fn history(conn: &mut AnyConnection, nhs: &str) -> Result<Vec<ObjectionVersion>, StoreError> {
    Ok(o::objections
        .filter(o::nhs_number.eq(nhs))
        .order(o::version.asc())
        .load(conn)?)
}

/// The latest version for the patient, if any.
pub fn current(
    conn: &mut AnyConnection,
    nhs: &str,
) -> Result<Option<ObjectionVersion>, StoreError> {
    let latest: Option<i32> = o::objections
        .filter(o::nhs_number.eq(nhs))
        .select(diesel::dsl::max(o::version))
        .get_result(conn)?;
    let Some(latest) = latest else {
        return Ok(None);
    };
    // Versions are never removed: the latest seen is there to read.
    Ok(o::objections
        .filter(o::nhs_number.eq(nhs))
        .filter(o::version.eq(latest))
        .get_result(conn)
        .optional()?)
}
