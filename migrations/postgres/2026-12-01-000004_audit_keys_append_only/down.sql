DROP TRIGGER audit_keys_append_only ON audit_keys;
