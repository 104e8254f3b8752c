-- 0006: the CA as a fleet (issue 14). Several serve processes on one
-- database behave as one CA: what they serve and schedule lives here.

-- Leases of scheduled jobs (sweeper, CRL/ARL publication, change-driven
-- checks, audit checkpoints, OCSP responder-key rotation): one holder at a
-- time; fence grows by one at each change of holder, and a write made
-- under a lease checks it (store.WithFence), so a deposed holder that
-- wakes up late writes nothing.
CREATE TABLE job_leases (
	name       TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	fence      INTEGER NOT NULL CHECK (fence > 0),
	expires_at INTEGER NOT NULL
) STRICT;

-- TS Art. 36: every status change, in commit order as far as the
-- sequence goes, for every replica's OCSP responder to re-sign that
-- serial's answer (status.Follow). Written by trigger, so a change made
-- by any process (a local `ca-server hold`, another replica) is seen.
-- Rows older than a day are pruned by the job-lease holder.
CREATE TABLE status_changes (
	seq       INTEGER PRIMARY KEY,
	serial    TEXT NOT NULL,
	cert_type TEXT NOT NULL,
	state     TEXT NOT NULL,
	-- Unix nanoseconds of the change (database clock): pruning by age
	at        INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000000 AS INTEGER))
) STRICT;
CREATE INDEX status_changes_at ON status_changes (at);
CREATE TRIGGER issuances_status_changed AFTER UPDATE ON issuances
WHEN NEW.state IS NOT OLD.state OR NEW.held_at IS NOT OLD.held_at
BEGIN
	INSERT INTO status_changes (serial, cert_type, state) VALUES (NEW.serial, NEW.cert_type, NEW.state);
END;

-- TS Art. 17: the CRL archive in the database, so every replica serves the
-- same newest CRL and ARL. Append-only.
CREATE TABLE crl_archive (
	series      TEXT NOT NULL,
	number      INTEGER NOT NULL CHECK (number > 0),
	this_update INTEGER NOT NULL,
	next_update INTEGER NOT NULL,
	der         BLOB NOT NULL,
	PRIMARY KEY (series, number)
) STRICT;
CREATE TRIGGER crl_archive_append_only_u BEFORE UPDATE ON crl_archive
BEGIN SELECT RAISE(ABORT, 'store: the CRL archive is append-only'); END;
CREATE TRIGGER crl_archive_append_only_d BEFORE DELETE ON crl_archive
BEGIN SELECT RAISE(ABORT, 'store: the CRL archive is append-only'); END;

-- OCSP responder keys in use (CPS §6.3.2.1): the certificate of each
-- responder key made in the shared token, so every replica signs with the
-- same one and none destroys a key another still uses. Append-only.
CREATE TABLE ocsp_responders (
	label       TEXT PRIMARY KEY,
	ca          TEXT NOT NULL,
	generation  INTEGER NOT NULL,
	certificate BLOB NOT NULL,
	not_after   INTEGER NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX ocsp_responders_ca ON ocsp_responders (ca, generation, created_at);
CREATE TRIGGER ocsp_responders_append_only_u BEFORE UPDATE ON ocsp_responders
BEGIN SELECT RAISE(ABORT, 'store: OCSP responders are append-only'); END;
CREATE TRIGGER ocsp_responders_append_only_d BEFORE DELETE ON ocsp_responders
BEGIN SELECT RAISE(ABORT, 'store: OCSP responders are append-only'); END;
