-- The same on SQLite and PostgreSQL.

-- NHS number to partner-local patient id. local_id '' records that the partner
-- holds no record for the NHS number (so it is not asked again until verified_at expires).
CREATE TABLE patient_links (
    nhs_number  TEXT    NOT NULL,
    partner_id  TEXT    NOT NULL,
    local_id    TEXT    NOT NULL,
    verified_at BIGINT  NOT NULL, -- unix milliseconds
    PRIMARY KEY (nhs_number, partner_id, local_id)
);
CREATE INDEX patient_links_by_local_id ON patient_links (partner_id, local_id);

-- Objections: every change is a new version; rows are never updated or deleted.
CREATE TABLE objections (
    nhs_number  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    status      TEXT    NOT NULL, -- FHIR Consent.status
    recorded_at BIGINT  NOT NULL,
    recorded_by TEXT    NOT NULL,
    consent     TEXT    NOT NULL, -- the Consent resource as recorded (JSON)
    PRIMARY KEY (nhs_number, version)
);

-- Audit events: append-only, numbered without gaps, each hash covering the previous.
CREATE TABLE audit_events (
    sequence      BIGINT  PRIMARY KEY,
    recorded_at   BIGINT  NOT NULL,
    event         TEXT    NOT NULL, -- the AuditEvent resource (JSON)
    previous_hash TEXT    NOT NULL,
    hash          TEXT    NOT NULL
);
