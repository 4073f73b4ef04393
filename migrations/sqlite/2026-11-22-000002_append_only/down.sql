DROP TRIGGER audit_events_no_delete;
DROP TRIGGER audit_events_no_update;
DROP TRIGGER objections_no_delete;
DROP TRIGGER objections_no_update;
