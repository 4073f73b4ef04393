//! Table definitions, the same on both backends.

diesel::table! {
    patient_links (nhs_number, partner_id, local_id) {
        nhs_number -> Text,
        partner_id -> Text,
        local_id -> Text,
        verified_at -> BigInt,
    }
}

diesel::table! {
    objections (nhs_number, version) {
        nhs_number -> Text,
        version -> Integer,
        status -> Text,
        recorded_at -> BigInt,
        recorded_by -> Text,
        consent -> Text,
    }
}

diesel::table! {
    audit_events (sequence) {
        sequence -> BigInt,
        recorded_at -> BigInt,
        event -> Text,
        previous_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_keys (key, value, sequence) {
        key -> Text,
        value -> Text,
        sequence -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(audit_events, audit_keys);
