-- 0006: the CA as a fleet (issue 14). The PostgreSQL form of
-- migrations/0006_fleet.sql.
CREATE TABLE job_leases (
	name       TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	fence      BIGINT NOT NULL CHECK (fence > 0),
	expires_at BIGINT NOT NULL
);

-- seq is taken at INSERT, not at COMMIT: a follower reading seq > last
-- could pass over a row committed late, so it keeps reading a gap until it
-- is older than any write transaction (status.Follow).
CREATE TABLE status_changes (
	seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	serial    TEXT COLLATE "C" NOT NULL,
	cert_type TEXT NOT NULL,
	state     TEXT NOT NULL,
	at        BIGINT NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1e9)::bigint
);
CREATE INDEX status_changes_at ON status_changes (at);
CREATE FUNCTION issuances_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO status_changes (serial, cert_type, state) VALUES (NEW.serial, NEW.cert_type, NEW.state);
	RETURN NULL;
END;
$$;
CREATE TRIGGER issuances_status_changed AFTER UPDATE ON issuances
FOR EACH ROW WHEN (NEW.state IS DISTINCT FROM OLD.state OR NEW.held_at IS DISTINCT FROM OLD.held_at)
EXECUTE FUNCTION issuances_status_changed();

CREATE TABLE crl_archive (
	series      TEXT COLLATE "C" NOT NULL,
	number      BIGINT NOT NULL CHECK (number > 0),
	this_update BIGINT NOT NULL,
	next_update BIGINT NOT NULL,
	der         BYTEA NOT NULL,
	PRIMARY KEY (series, number)
);
CREATE TRIGGER crl_archive_append_only_u BEFORE UPDATE ON crl_archive
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER crl_archive_append_only_d BEFORE DELETE ON crl_archive
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER crl_archive_append_only_t BEFORE TRUNCATE ON crl_archive
FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

CREATE TABLE ocsp_responders (
	label       TEXT PRIMARY KEY,
	ca          TEXT NOT NULL,
	generation  BIGINT NOT NULL,
	certificate BYTEA NOT NULL,
	not_after   BIGINT NOT NULL,
	created_at  BIGINT NOT NULL
);
CREATE INDEX ocsp_responders_ca ON ocsp_responders (ca, generation, created_at);
CREATE TRIGGER ocsp_responders_append_only_u BEFORE UPDATE ON ocsp_responders
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER ocsp_responders_append_only_d BEFORE DELETE ON ocsp_responders
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER ocsp_responders_append_only_t BEFORE TRUNCATE ON ocsp_responders
FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
