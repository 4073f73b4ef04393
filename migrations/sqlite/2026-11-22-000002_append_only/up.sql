-- The database itself refuses to change or remove objections and audit events.
CREATE TRIGGER objections_no_update BEFORE UPDATE ON objections
BEGIN SELECT RAISE(ABORT, 'objections are append-only'); END;
CREATE TRIGGER objections_no_delete BEFORE DELETE ON objections
BEGIN SELECT RAISE(ABORT, 'objections are append-only'); END;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
