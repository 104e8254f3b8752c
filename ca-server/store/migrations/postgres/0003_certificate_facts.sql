-- 0003 (PostgreSQL): facts read once from each certificate's DER, as
-- migrations/0003_certificate_facts.sql for SQLite (CPS §5.6, §4.9.16).
ALTER TABLE issuances ADD COLUMN not_after BIGINT;
ALTER TABLE issuances ADD COLUMN issuer_key_id BYTEA;

CREATE INDEX issuances_facts_missing ON issuances (serial) WHERE der IS NOT NULL AND not_after IS NULL;
CREATE INDEX issuances_held_expiry ON issuances (not_after) WHERE state = 'held';
