-- 0004 (PostgreSQL): card maintenance at the counter, as
-- migrations/0004_card_maintenance.sql for SQLite (TS Arts. 6(ii), 7(ii)).
-- No PIN is ever sent to the CA or kept here (CPS §6.4.1.2).
CREATE TABLE card_maintenance (
	id                 TEXT PRIMARY KEY,
	terminal_id        TEXT NOT NULL REFERENCES terminals(id),
	request_id         TEXT NOT NULL,
	request_sha256     BYTEA NOT NULL CHECK (length(request_sha256) = 32),
	operator_id        TEXT NOT NULL,
	channel_id         TEXT NOT NULL CONSTRAINT card_maintenance_channel_id_key UNIQUE REFERENCES channels(id),
	card_serial        TEXT NOT NULL,
	operation          TEXT NOT NULL CHECK (operation IN ('pin-reset', 'key-destruction')),
	targets            TEXT NOT NULL CHECK (targets IN ('sign', 'auth', 'sign,auth')),
	state              TEXT NOT NULL CHECK (state IN ('authorised', 'done')),
	script             BYTEA,
	channel_state      BYTEA NOT NULL,
	created_at         BIGINT NOT NULL,
	done_at            BIGINT,
	confirm_request_id TEXT,
	confirm_sha256     BYTEA,
	CONSTRAINT card_maintenance_terminal_id_request_id_key UNIQUE (terminal_id, request_id),
	CHECK ((state = 'done') = (done_at IS NOT NULL AND confirm_sha256 IS NOT NULL AND confirm_request_id IS NOT NULL))
);

CREATE INDEX issuances_card_serial ON issuances (lower(card_serial));

-- SQLite's instr(haystack, needle), for the statements package store shares
-- with SQLite (which has no strpos).
CREATE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN strpos(haystack, needle);
