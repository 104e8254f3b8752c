-- 0007: commit outcomes (issue 14, database failover); see
-- migrations/postgres/0007_failover.sql. A SQLite commit never has an
-- unknown outcome (no connection to lose): the table exists so both schemas
-- keep the same version and tables, and stays empty.
CREATE TABLE tx_outcomes (
	token BLOB PRIMARY KEY CHECK (length(token) = 16),
	at    INTEGER NOT NULL
);
CREATE INDEX tx_outcomes_at ON tx_outcomes (at);
