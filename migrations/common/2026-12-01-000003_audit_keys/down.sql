DROP INDEX audit_events_by_recorded_at;
DROP TABLE audit_keys;
