-- Audit search keys are written with their events and never changed.
CREATE TRIGGER audit_keys_no_update BEFORE UPDATE ON audit_keys
BEGIN SELECT RAISE(ABORT, 'audit keys are append-only'); END;
CREATE TRIGGER audit_keys_no_delete BEFORE DELETE ON audit_keys
BEGIN SELECT RAISE(ABORT, 'audit keys are append-only'); END;
