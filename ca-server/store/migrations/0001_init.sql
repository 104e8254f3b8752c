-- 0001: the ca-server's first schema. Times are Unix nanoseconds (UTC).

-- Terminals enrolled with the internal TLS CA. The row exists before the
-- terminal's client certificate is signed (cert_sha256 NULL until then), so a
-- signed TLS certificate always has a record.
CREATE TABLE terminals (
	id             TEXT PRIMARY KEY,
	municipality   TEXT NOT NULL CHECK (length(municipality) = 6),
	cert_serial    TEXT NOT NULL UNIQUE,
	cert_sha256    BLOB UNIQUE CHECK (cert_sha256 IS NULL OR length(cert_sha256) = 32),
	cert_not_after INTEGER,
	enrolled_at    INTEGER NOT NULL,
	revoked_at     INTEGER
) STRICT;

-- One-time enrolment tokens: only the SHA-256 of the token is kept.
CREATE TABLE enrolment_tokens (
	token_sha256 BLOB PRIMARY KEY CHECK (length(token_sha256) = 32),
	municipality TEXT NOT NULL CHECK (length(municipality) = 6),
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	used_at      INTEGER,
	terminal_id  TEXT REFERENCES terminals(id),
	CHECK ((used_at IS NULL) = (terminal_id IS NULL))
) STRICT;

-- Secure-channel openings: the CA-chosen host challenge, single use.
CREATE TABLE channels (
	id             TEXT PRIMARY KEY,
	terminal_id    TEXT NOT NULL REFERENCES terminals(id),
	host_challenge BLOB NOT NULL,
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,
	used_at        INTEGER
) STRICT;

-- TS Art. 5(iii): the SHA-256 of the SubjectPublicKeyInfo of every key ever
-- generated, so that no key is ever produced twice.
CREATE TABLE key_fingerprints (
	spki_sha256  BLOB PRIMARY KEY CHECK (length(spki_sha256) = 32),
	generated_at INTEGER NOT NULL
) STRICT;

-- One certificate put on one card. State machine:
--   issuing -> prepared -> delivered -> (held <-> delivered) -> revoked
--   issuing|prepared -> revoked (reason 0, destroyed before delivery)
CREATE TABLE issuances (
	id                 TEXT PRIMARY KEY,
	terminal_id        TEXT NOT NULL REFERENCES terminals(id),
	request_id         TEXT NOT NULL,
	request_sha256     BLOB NOT NULL,
	operator_id        TEXT NOT NULL,
	channel_id         TEXT NOT NULL UNIQUE REFERENCES channels(id),
	card_serial        TEXT NOT NULL,
	person_hash        BLOB NOT NULL,
	cert_type          TEXT NOT NULL CHECK (cert_type IN ('sign', 'auth')),
	supersedes         INTEGER NOT NULL CHECK (supersedes IN (0, 1)),
	serial             TEXT NOT NULL UNIQUE,
	key_sha256         BLOB NOT NULL UNIQUE REFERENCES key_fingerprints(spki_sha256),
	state              TEXT NOT NULL CHECK (state IN ('issuing', 'prepared', 'delivered', 'held', 'revoked')),
	der                BLOB,
	script             BLOB,
	channel_state      BLOB,
	created_at         INTEGER NOT NULL,
	deadline           INTEGER NOT NULL,
	prepared_at        INTEGER,
	delivered_at       INTEGER,
	confirm_request_id TEXT,
	confirm_sha256     BLOB,
	revoked_at         INTEGER,
	revocation_reason  INTEGER CHECK (revocation_reason IS NULL OR revocation_reason BETWEEN 0 AND 10),
	abort_request_id   TEXT,
	UNIQUE (terminal_id, request_id),
	-- a prepared, delivered or held certificate always has its DER
	CHECK (state NOT IN ('prepared', 'delivered', 'held') OR der IS NOT NULL),
	-- delivered only with the card's confirmation
	CHECK (state NOT IN ('delivered', 'held') OR (confirm_sha256 IS NOT NULL AND delivered_at IS NOT NULL)),
	CHECK ((state = 'revoked') = (revoked_at IS NOT NULL AND revocation_reason IS NOT NULL))
) STRICT;

-- CPS §4.3.1.1: at most one valid or held certificate of each type per person.
CREATE UNIQUE INDEX issuances_one_valid_per_person
	ON issuances (person_hash, cert_type) WHERE state IN ('delivered', 'held');
-- ... and at most one on its way to a card; a renewal supersedes the valid one
-- in the same transaction that marks it delivered.
CREATE UNIQUE INDEX issuances_one_pending_per_person
	ON issuances (person_hash, cert_type) WHERE state IN ('issuing', 'prepared');
CREATE INDEX issuances_pending_deadline
	ON issuances (deadline) WHERE state IN ('issuing', 'prepared');

-- Hash-chained audit log (see package audit).
CREATE TABLE audit_records (
	seq       INTEGER PRIMARY KEY,
	at        INTEGER NOT NULL,
	terminal  TEXT NOT NULL,
	operator  TEXT NOT NULL,
	action    TEXT NOT NULL,
	target    TEXT NOT NULL,
	result    TEXT NOT NULL,
	detail    TEXT NOT NULL,
	prev_hash BLOB NOT NULL,
	hash      BLOB NOT NULL
) STRICT;
CREATE INDEX audit_records_operator ON audit_records (operator, seq);

CREATE TABLE audit_checkpoints (
	seq       INTEGER PRIMARY KEY,
	at        INTEGER NOT NULL,
	hash      BLOB NOT NULL,
	key_id    TEXT NOT NULL,
	signature BLOB NOT NULL
) STRICT;
