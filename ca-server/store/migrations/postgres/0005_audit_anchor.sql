-- 0005: anchored audit (CPS §5.4; issue 13, threat 1). The PostgreSQL form
-- of migrations/0005_audit_anchor.sql.
--
-- Checkpoints form their own chain (number, hash of the previous
-- checkpoint, inside the signed digest); rows written before keep a NULL
-- number and prev_hash (never rewritten) and are numbered by position.
ALTER TABLE audit_checkpoints ADD COLUMN number BIGINT CHECK (number IS NULL OR number > 0);
ALTER TABLE audit_checkpoints ADD COLUMN prev_hash BYTEA;
ALTER TABLE audit_checkpoints ADD CONSTRAINT audit_checkpoints_chained CHECK ((number IS NULL) = (prev_hash IS NULL));
CREATE UNIQUE INDEX audit_checkpoints_number ON audit_checkpoints (number);

-- Append-only for every role. The serving role is also refused these
-- statements by privilege (ca-server db migrate --serving-role grants it
-- only SELECT and INSERT on the audit tables) and, owning no table, cannot
-- drop these triggers.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'store: % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_records_append_only_u BEFORE UPDATE ON audit_records
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_records_append_only_d BEFORE DELETE ON audit_records
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_records_append_only_t BEFORE TRUNCATE ON audit_records
FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only_u BEFORE UPDATE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only_d BEFORE DELETE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only_t BEFORE TRUNCATE ON audit_checkpoints
FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
