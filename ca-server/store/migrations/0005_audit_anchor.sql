-- 0005: anchored audit (CPS §5.4; issue 13, threat 1).
--
-- Checkpoints form their own chain: each carries its number (1, 2, …) and
-- the hash of the checkpoint before it, inside the signed digest (package
-- audit, digest v2), so deleting a checkpoint or cutting the log back is
-- detected. Checkpoints written before this migration (digest v1) keep a
-- NULL number and prev_hash (the rows are never rewritten): readers number
-- them by position, and the first chained checkpoint commits to all of
-- them (audit.CheckpointLink).
ALTER TABLE audit_checkpoints ADD COLUMN number INTEGER CHECK (number IS NULL OR number > 0);
ALTER TABLE audit_checkpoints ADD COLUMN prev_hash BLOB CHECK ((number IS NULL) = (prev_hash IS NULL));
CREATE UNIQUE INDEX audit_checkpoints_number ON audit_checkpoints (number);

-- Append-only, whatever code runs against the file. (Someone with the
-- file itself can drop a trigger: the checkpoints signed in the HSM and the
-- witnesses outside the database detect that rewrite.)
CREATE TRIGGER audit_records_append_only_u BEFORE UPDATE ON audit_records
BEGIN SELECT RAISE(ABORT, 'store: audit records are append-only'); END;
CREATE TRIGGER audit_records_append_only_d BEFORE DELETE ON audit_records
BEGIN SELECT RAISE(ABORT, 'store: audit records are append-only'); END;
CREATE TRIGGER audit_checkpoints_append_only_u BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'store: audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_append_only_d BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'store: audit checkpoints are append-only'); END;
