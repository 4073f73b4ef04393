-- Audit search keys are written with their events and never changed.
CREATE TRIGGER audit_keys_append_only BEFORE UPDATE OR DELETE ON audit_keys
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
