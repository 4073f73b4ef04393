-- What the privacy officer's audit search looks events up by, one row per key of an
-- event (patient, agent, outcome, tag), written in the same transaction as the event;
-- and the time each event was recorded, for date searches.
CREATE TABLE audit_keys (
    key      TEXT   NOT NULL, -- patient | agent | outcome | tag
    value    TEXT   NOT NULL,
    sequence BIGINT NOT NULL, -- the audit event's
    PRIMARY KEY (key, value, sequence)
);
CREATE INDEX audit_events_by_recorded_at ON audit_events (recorded_at);
