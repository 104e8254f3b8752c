package store

// migrations are applied in order; migration i brings the schema to version i+1.
// Never edit a released migration: append a new one.
var migrations = []string{
	// 1: operators, permissions, audit chain, terminal secrets.
	`
CREATE TABLE operators (
	id                TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
	name              TEXT NOT NULL,
	active            INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0,1)),
	created_at        TEXT NOT NULL,
	created_by        TEXT NOT NULL,
	finger            TEXT,                -- enrolled finger name in fprintd, NULL if none
	password_exempt   INTEGER NOT NULL DEFAULT 0 CHECK (password_exempt IN (0,1)),
	exempt_reason     TEXT,
	exempt_by         TEXT,
	password_hash     BLOB,
	password_salt     BLOB,
	failed_logins     INTEGER NOT NULL DEFAULT 0,
	locked            INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0,1)),
	CHECK (password_exempt = 0 OR length(exempt_reason) > 0)
) STRICT;
CREATE TABLE operator_permissions (
	operator_id TEXT NOT NULL REFERENCES operators(id),
	permission  TEXT NOT NULL CHECK (permission IN ('reception','cs','supervisor','audit')),
	granted_by  TEXT NOT NULL,
	granted_at  TEXT NOT NULL,
	PRIMARY KEY (operator_id, permission)
) STRICT;
CREATE TABLE audit_log (
	seq       INTEGER PRIMARY KEY,
	at        TEXT NOT NULL,
	operator  TEXT NOT NULL,
	action    TEXT NOT NULL,
	target    TEXT NOT NULL,
	result    TEXT NOT NULL,
	detail    TEXT NOT NULL,
	prev_hash BLOB NOT NULL,
	hash      BLOB NOT NULL
) STRICT;
CREATE INDEX audit_log_operator ON audit_log(operator, seq);
CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB NOT NULL
) STRICT;
CREATE TABLE terminal_secrets (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;
`,
	// 2: resident register (CS), resident-record files, change outbox.
	`
CREATE TABLE residents (
	record_code     TEXT PRIMARY KEY,      -- 住民票コード (11 digits)
	name            TEXT NOT NULL,
	name_kana       TEXT NOT NULL,
	former_surname  TEXT NOT NULL DEFAULT '',  -- 旧氏
	alias_name      TEXT NOT NULL DEFAULT '',  -- 通称 (foreign residents)
	alias_kana      TEXT NOT NULL DEFAULT '',
	birth_date      TEXT NOT NULL,             -- YYYY-MM-DD
	sex             TEXT NOT NULL CHECK (sex IN ('M','F')),
	address         TEXT NOT NULL DEFAULT '',
	status          TEXT NOT NULL CHECK (status IN ('resident','abroad','moved_out','deceased')),
	fuhyo_address   TEXT NOT NULL DEFAULT '',  -- 戸籍の附票: last domestic address (abroad only)
	honseki         TEXT NOT NULL DEFAULT '',  -- 本籍 (abroad only)
	foreign_resident INTEGER NOT NULL DEFAULT 0,
	updated_at      TEXT NOT NULL
) STRICT;
CREATE INDEX residents_kana ON residents(name_kana);
CREATE INDEX residents_birth ON residents(birth_date);
CREATE TABLE resident_files (
	id          TEXT PRIMARY KEY,
	record_code TEXT NOT NULL REFERENCES residents(record_code),
	exported_by TEXT NOT NULL,
	exported_at TEXT NOT NULL,
	expires_at  TEXT NOT NULL,
	used_at     TEXT,
	used_by     TEXT
) STRICT;
CREATE TABLE resident_changes (
	id          INTEGER PRIMARY KEY,
	record_code TEXT NOT NULL REFERENCES residents(record_code),
	kind        TEXT NOT NULL CHECK (kind IN ('move_in','move_out','name_change','address_change','death','emigration','correction')),
	effective   TEXT NOT NULL,
	recorded_by TEXT NOT NULL,
	recorded_at TEXT NOT NULL,
	sent_at     TEXT
) STRICT;
`,
	// 3: reception cases and the issuance journal.
	`
CREATE TABLE cases (
	id          INTEGER PRIMARY KEY,
	kind        TEXT NOT NULL,
	record_code TEXT NOT NULL,
	state       TEXT NOT NULL,
	opened_by   TEXT NOT NULL,
	opened_at   TEXT NOT NULL,
	updated_at  TEXT NOT NULL,
	data        TEXT NOT NULL        -- JSON: evidence, explanations, decision, substitutions
) STRICT;
CREATE TABLE case_events (
	case_id    INTEGER NOT NULL REFERENCES cases(id),
	seq        INTEGER NOT NULL,
	at         TEXT NOT NULL,
	operator   TEXT NOT NULL,
	event      TEXT NOT NULL,
	from_state TEXT NOT NULL,
	to_state   TEXT NOT NULL,
	PRIMARY KEY (case_id, seq)
) STRICT;
CREATE TABLE issuance_journal (
	request_id    TEXT PRIMARY KEY,      -- idempotency key sent to the CA
	case_id       INTEGER NOT NULL REFERENCES cases(id),
	state         TEXT NOT NULL,
	card_serial   TEXT NOT NULL DEFAULT '',
	ca_issuance   TEXT NOT NULL DEFAULT '',
	started_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL,
	last_error    TEXT NOT NULL DEFAULT ''
) STRICT;
`,
	// 4: what the issuance orchestration (app/issue) needs to resolve a journal row after a
	// crash: the certificate type, the operator, the exact prepare request (replayed to find
	// the CA's issuance by request id) and what the card must undergo after an abort. Never a
	// PIN, a key or a script (the script holds the wrapped key: TS Art. 6(iii)).
	`
ALTER TABLE issuance_journal ADD COLUMN cert_type TEXT NOT NULL DEFAULT '';
ALTER TABLE issuance_journal ADD COLUMN operator TEXT NOT NULL DEFAULT '';
ALTER TABLE issuance_journal ADD COLUMN prepare_request TEXT NOT NULL DEFAULT '';
ALTER TABLE issuance_journal ADD COLUMN card_cleanup TEXT NOT NULL DEFAULT '';
CREATE INDEX issuance_journal_open ON issuance_journal(state) WHERE state NOT IN ('delivered','aborted');
CREATE INDEX issuance_journal_case ON issuance_journal(case_id, cert_type);
`,
	// 5: delivery of the resident-change outbox to the CA (change-driven revocation,
	// R02 II-3-1(2)): attempts with backoff, the last failure (English, no personal data beyond
	// what the row holds) and the CA's change id once delivered.
	`
ALTER TABLE resident_changes ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resident_changes ADD COLUMN next_attempt_at TEXT NOT NULL DEFAULT '';
ALTER TABLE resident_changes ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE resident_changes ADD COLUMN ca_change_id INTEGER;
`,
	// 6: receipts of the CA audit witness (issue 13 threat 2): each is the CA's signature, by
	// its audit checkpoint key, over this terminal's audit chain head (seq, hash) at a CA time.
	// app/audit checks the chain against them; their signatures are checked against keys kept
	// outside this file (app.Config.WitnessKeyFile), so whoever rewrites this file cannot make
	// new ones, and deleting them only makes records count as not yet witnessed.
	`
CREATE TABLE audit_receipts (
	seq          INTEGER PRIMARY KEY,  -- the witnessed head's record
	hash         BLOB NOT NULL,
	terminal_id  TEXT NOT NULL,
	witnessed_at TEXT NOT NULL,        -- CA time, RFC 3339 with nanoseconds
	key_id       TEXT NOT NULL,
	signature    BLOB NOT NULL,
	received_at  TEXT NOT NULL
) STRICT;
`,
}
