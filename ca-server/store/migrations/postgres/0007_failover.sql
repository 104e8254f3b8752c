-- 0007: commit outcomes (issue 14, database failover). Every PostgreSQL
-- write transaction inserts a random token here, under a transaction-level
-- advisory lock on the token, just before COMMIT. When the connection drops
-- at COMMIT (a failover, a network cut) the store reconnects, takes the same
-- lock (granted only once the old transaction has ended, committed or
-- rolled back) and looks the token up: present means committed, absent
-- means rolled back and the transaction is run again. Tokens are only
-- needed for seconds; the store deletes those older than a day.
CREATE TABLE tx_outcomes (
	token BYTEA PRIMARY KEY CHECK (length(token) = 16),
	at    BIGINT NOT NULL
);
CREATE INDEX tx_outcomes_at ON tx_outcomes (at);
