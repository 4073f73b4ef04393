DROP TRIGGER audit_keys_no_update;
DROP TRIGGER audit_keys_no_delete;
