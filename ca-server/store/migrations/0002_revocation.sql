-- 0002: revocation, hold, change-driven revocation, CRL numbers, ARL entries
-- and the verifier registry (DOMAIN §5; TS Arts. 12–17, 33, 36; CPS §4.9).
-- Times are Unix nanoseconds (UTC).

-- The instant a certificate was put on hold (CPS §4.9.13): the CRL lists a
-- held certificate with this date and reason certificateHold (6).
ALTER TABLE issuances ADD COLUMN held_at INTEGER;

-- A held certificate always has its hold instant.
CREATE TRIGGER issuances_held_needs_time BEFORE UPDATE OF state ON issuances
WHEN NEW.state = 'held' AND NEW.held_at IS NULL
BEGIN
	SELECT RAISE(ABORT, 'store: a held certificate needs held_at');
END;

-- CPS §4.9: revocation is never undone. Nothing may change the state, time
-- or reason of a revoked certificate, whatever code runs against the file.
-- AFTER, so the row constraints (one valid certificate per person) report
-- first; RAISE(ABORT) still undoes the statement.
CREATE TRIGGER issuances_revocation_final AFTER UPDATE ON issuances
WHEN OLD.state = 'revoked' AND (NEW.state IS NOT 'revoked' OR NEW.revoked_at IS NOT OLD.revoked_at
	OR NEW.revocation_reason IS NOT OLD.revocation_reason)
BEGIN
	SELECT RAISE(ABORT, 'store: revocation is never undone');
END;
CREATE TRIGGER issuances_revoked_not_deleted BEFORE DELETE ON issuances
WHEN OLD.state IN ('delivered', 'held', 'revoked')
BEGIN
	SELECT RAISE(ABORT, 'store: issued certificates are never deleted');
END;

-- TS Arts. 12–16: every revocation request, hold and release, with who
-- asked, through which channel, on what evidence, and when. Append-only.
CREATE TABLE status_requests (
	id         INTEGER PRIMARY KEY,
	serial     TEXT NOT NULL REFERENCES issuances(serial),
	action     TEXT NOT NULL CHECK (action IN ('revoke', 'hold', 'release')),
	kind       TEXT NOT NULL,
	reason     INTEGER CHECK (reason IS NULL OR reason BETWEEN 0 AND 6),
	channel    TEXT NOT NULL CHECK (channel IN ('counter', 'online-signed', 'phone', 'system')),
	terminal   TEXT NOT NULL,
	operator   TEXT NOT NULL,
	request_id TEXT,
	evidence   TEXT NOT NULL,
	at         INTEGER NOT NULL,
	UNIQUE (terminal, request_id)
) STRICT;
CREATE INDEX status_requests_serial ON status_requests (serial, id);
CREATE TRIGGER status_requests_append_only_u BEFORE UPDATE ON status_requests
BEGIN SELECT RAISE(ABORT, 'store: status requests are append-only'); END;
CREATE TRIGGER status_requests_append_only_d BEFORE DELETE ON status_requests
BEGIN SELECT RAISE(ABORT, 'store: status requests are append-only'); END;

-- 異動等失効情報 (R02 II-3-1(2)): only the fact that a person's record
-- changed — the keyed person hash, the kind of event and when — never the
-- changed items themselves.
CREATE TABLE resident_changes (
	id          INTEGER PRIMARY KEY,
	person_hash BLOB NOT NULL,
	event       TEXT NOT NULL,
	occurred_at INTEGER NOT NULL,
	received_at INTEGER NOT NULL,
	terminal    TEXT NOT NULL,
	operator    TEXT NOT NULL,
	request_id  TEXT,
	UNIQUE (terminal, request_id)
) STRICT;
CREATE INDEX resident_changes_person ON resident_changes (person_hash, occurred_at);

-- A revocation that falls due later unless another event comes first (the
-- user-authentication certificate after a move-out not followed by a move-in
-- within 30 days, CPS §4.9.1.1(2)).
CREATE TABLE pending_revocations (
	id           INTEGER PRIMARY KEY,
	change_id    INTEGER NOT NULL REFERENCES resident_changes(id),
	person_hash  BLOB NOT NULL,
	cert_type    TEXT NOT NULL CHECK (cert_type IN ('sign', 'auth')),
	event        TEXT NOT NULL,
	unless_event TEXT NOT NULL,
	reason       INTEGER NOT NULL CHECK (reason BETWEEN 0 AND 6),
	due_at       INTEGER NOT NULL,
	ended_at     INTEGER,
	outcome      TEXT CHECK (outcome IS NULL OR outcome IN ('revoked', 'cancelled', 'nothing-to-revoke')),
	CHECK ((ended_at IS NULL) = (outcome IS NULL))
) STRICT;
CREATE INDEX pending_revocations_due ON pending_revocations (due_at) WHERE ended_at IS NULL;
CREATE INDEX pending_revocations_person ON pending_revocations (person_hash) WHERE ended_at IS NULL;

-- RFC 5280 §5.2.3: CRL numbers increase within a series (one CA's CRL, or
-- its ARL). Numbers are taken here, in a write transaction, so two
-- processes (the server's schedule and `crl publish --now`) never share one.
CREATE TABLE crl_series (
	series      TEXT PRIMARY KEY,
	last_number INTEGER NOT NULL CHECK (last_number >= 0)
) STRICT;

-- Record of every CRL and ARL published (TS Art. 17: 失効情報ファイル; the
-- DER itself is in the archive on disk).
CREATE TABLE crls_published (
	series       TEXT NOT NULL,
	number       INTEGER NOT NULL,
	this_update  INTEGER NOT NULL,
	next_update  INTEGER NOT NULL,
	entries      INTEGER NOT NULL,
	sha256       BLOB NOT NULL CHECK (length(sha256) = 32),
	trigger_kind TEXT NOT NULL,
	PRIMARY KEY (series, number)
) STRICT;

-- ARL entries: revoked CA and link certificates (CPS §7.2(2)(3)).
CREATE TABLE authority_revocations (
	series     TEXT NOT NULL,
	serial     TEXT NOT NULL,
	revoked_at INTEGER NOT NULL,
	reason     INTEGER NOT NULL CHECK (reason BETWEEN 0 AND 6),
	PRIMARY KEY (series, serial)
) STRICT;

-- Registered verifiers (CPS §1.3.4, §2.4; TS Arts. 33, 36): only they may
-- fetch CRLs and query OCSP, identified by the SHA-256 of their TLS client
-- certificate.
CREATE TABLE verifiers (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
	cert_sha256   BLOB NOT NULL UNIQUE CHECK (length(cert_sha256) = 32),
	cert_serial   TEXT NOT NULL,
	not_after     INTEGER NOT NULL,
	issued_here   INTEGER NOT NULL CHECK (issued_here IN (0, 1)),
	registered_at INTEGER NOT NULL,
	revoked_at    INTEGER
) STRICT;
