DROP TRIGGER audit_events_append_only ON audit_events;
DROP TRIGGER objections_append_only ON objections;
DROP FUNCTION refuse_change();
