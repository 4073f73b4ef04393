//! Facade ids: `{partner}.{local id}`. Partner ids start with a letter and contain no
//! dot, so the first dot splits them; merged Patients use the NHS number instead.

use super::search::value::is_valid_id;

/// The facade id for a partner's resource, if it fits in a FHIR id (64 characters).
pub fn facade_id(partner_id: &str, local_id: &str) -> Option<String> {
    let id = format!("{partner_id}.{local_id}");
    (is_valid_id(local_id) && is_valid_id(&id)).then_some(id)
}

/// Splits a facade id into `(partner id, local id)`.
pub fn split_facade_id(id: &str) -> Option<(&str, &str)> {
    if !is_valid_id(id) {
        return None;
    }
    let (partner, local) = id.split_once('.')?;
    (!partner.is_empty() && !local.is_empty()).then_some((partner, local))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn facade_ids_round_trip(partner in "[a-z][a-z0-9-]{0,15}", local in "[A-Za-z0-9.-]{1,47}") {
            let id = facade_id(&partner, &local).unwrap();
            prop_assert!(id.len() <= 64);
            prop_assert_eq!(split_facade_id(&id), Some((partner.as_str(), local.as_str())));
        }
    }

    #[test]
    fn ids_that_do_not_fit_are_refused() {
        assert!(facade_id("gp", &"x".repeat(62)).is_none());
        assert!(facade_id("gp", "a/b").is_none());
        assert!(split_facade_id("9000000009").is_none());
        assert!(split_facade_id(".x").is_none());
    }
}
