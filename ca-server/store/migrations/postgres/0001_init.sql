-- 0001 (PostgreSQL): the ca-server's first schema, as migrations/0001_init.sql
-- for SQLite. Times are Unix nanoseconds (UTC) in BIGINT; the statements in
-- package store are shared by both engines. Every unique constraint and
-- index is named table_column… so that store.isUnique can tell which one a
-- violation hit. Certificate serials sort bytewise (COLLATE "C"): CRLs list
-- them in numeric order by (length, text).

-- Terminals enrolled with the internal TLS CA. The row exists before the
-- terminal's client certificate is signed (cert_sha256 NULL until then), so a
-- signed TLS certificate always has a record.
CREATE TABLE terminals (
	id             TEXT PRIMARY KEY,
	municipality   TEXT NOT NULL CHECK (length(municipality) = 6),
	cert_serial    TEXT NOT NULL CONSTRAINT terminals_cert_serial_key UNIQUE,
	cert_sha256    BYTEA CONSTRAINT terminals_cert_sha256_key UNIQUE CHECK (cert_sha256 IS NULL OR length(cert_sha256) = 32),
	cert_not_after BIGINT,
	enrolled_at    BIGINT NOT NULL,
	revoked_at     BIGINT
);

-- One-time enrolment tokens: only the SHA-256 of the token is kept.
CREATE TABLE enrolment_tokens (
	token_sha256 BYTEA PRIMARY KEY CHECK (length(token_sha256) = 32),
	municipality TEXT NOT NULL CHECK (length(municipality) = 6),
	created_at   BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL,
	used_at      BIGINT,
	terminal_id  TEXT REFERENCES terminals(id),
	CHECK ((used_at IS NULL) = (terminal_id IS NULL))
);

-- Secure-channel openings: the CA-chosen host challenge, single use.
CREATE TABLE channels (
	id             TEXT PRIMARY KEY,
	terminal_id    TEXT NOT NULL REFERENCES terminals(id),
	host_challenge BYTEA NOT NULL,
	created_at     BIGINT NOT NULL,
	expires_at     BIGINT NOT NULL,
	used_at        BIGINT
);

-- TS Art. 5(iii): the SHA-256 of the SubjectPublicKeyInfo of every key ever
-- generated, so that no key is ever produced twice.
CREATE TABLE key_fingerprints (
	spki_sha256  BYTEA PRIMARY KEY CHECK (length(spki_sha256) = 32),
	generated_at BIGINT NOT NULL
);

-- One certificate put on one card. State machine:
--   issuing -> prepared -> delivered -> (held <-> delivered) -> revoked
--   issuing|prepared -> revoked (reason 0, destroyed before delivery)
CREATE TABLE issuances (
	id                 TEXT PRIMARY KEY,
	terminal_id        TEXT NOT NULL REFERENCES terminals(id),
	request_id         TEXT NOT NULL,
	request_sha256     BYTEA NOT NULL,
	operator_id        TEXT NOT NULL,
	channel_id         TEXT NOT NULL CONSTRAINT issuances_channel_id_key UNIQUE REFERENCES channels(id),
	card_serial        TEXT NOT NULL,
	person_hash        BYTEA NOT NULL,
	cert_type          TEXT NOT NULL CHECK (cert_type IN ('sign', 'auth')),
	supersedes         BOOLEAN NOT NULL,
	serial             TEXT COLLATE "C" NOT NULL CONSTRAINT issuances_serial_key UNIQUE,
	key_sha256         BYTEA NOT NULL CONSTRAINT issuances_key_sha256_key UNIQUE REFERENCES key_fingerprints(spki_sha256),
	state              TEXT NOT NULL CHECK (state IN ('issuing', 'prepared', 'delivered', 'held', 'revoked')),
	der                BYTEA,
	script             BYTEA,
	channel_state      BYTEA,
	created_at         BIGINT NOT NULL,
	deadline           BIGINT NOT NULL,
	prepared_at        BIGINT,
	delivered_at       BIGINT,
	confirm_request_id TEXT,
	confirm_sha256     BYTEA,
	revoked_at         BIGINT,
	revocation_reason  INTEGER CHECK (revocation_reason IS NULL OR revocation_reason BETWEEN 0 AND 10),
	abort_request_id   TEXT,
	CONSTRAINT issuances_terminal_id_request_id_key UNIQUE (terminal_id, request_id),
	-- a prepared, delivered or held certificate always has its DER
	CHECK (state NOT IN ('prepared', 'delivered', 'held') OR der IS NOT NULL),
	-- delivered only with the card's confirmation
	CHECK (state NOT IN ('delivered', 'held') OR (confirm_sha256 IS NOT NULL AND delivered_at IS NOT NULL)),
	CHECK ((state = 'revoked') = (revoked_at IS NOT NULL AND revocation_reason IS NOT NULL))
);

-- CPS §4.3.1.1: at most one valid or held certificate of each type per person.
CREATE UNIQUE INDEX issuances_person_hash_one_valid
	ON issuances (person_hash, cert_type) WHERE state IN ('delivered', 'held');
-- ... and at most one on its way to a card; a renewal supersedes the valid one
-- in the same transaction that marks it delivered.
CREATE UNIQUE INDEX issuances_person_hash_one_pending
	ON issuances (person_hash, cert_type) WHERE state IN ('issuing', 'prepared');
CREATE INDEX issuances_pending_deadline
	ON issuances (deadline) WHERE state IN ('issuing', 'prepared');

-- Hash-chained audit log (see package audit).
CREATE TABLE audit_records (
	seq       BIGINT PRIMARY KEY,
	at        BIGINT NOT NULL,
	terminal  TEXT NOT NULL,
	operator  TEXT NOT NULL,
	action    TEXT NOT NULL,
	target    TEXT NOT NULL,
	result    TEXT NOT NULL,
	detail    TEXT NOT NULL,
	prev_hash BYTEA NOT NULL,
	hash      BYTEA NOT NULL
);
CREATE INDEX audit_records_operator ON audit_records (operator, seq);

CREATE TABLE audit_checkpoints (
	seq       BIGINT PRIMARY KEY,
	at        BIGINT NOT NULL,
	hash      BYTEA NOT NULL,
	key_id    TEXT NOT NULL,
	signature BYTEA NOT NULL
);
