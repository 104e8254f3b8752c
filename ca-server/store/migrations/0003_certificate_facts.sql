-- 0003: facts read once from each certificate's DER, so CRLs can be cut per
-- CA key generation and expired certificates left out (CPS §5.6, §4.9.16).
-- Filled by SQLite.FillCertificateFacts; NULL until then.

-- notAfter of the certificate (Unix nanoseconds). CPS glossary (CRL): the
-- CRL lists certificates revoked within their validity, so an entry leaves
-- the CRL once the certificate has expired (RFC 5280 §3.3 allows it); and
-- a hold lasts only while the certificate is valid (CPS §4.9.16).
ALTER TABLE issuances ADD COLUMN not_after INTEGER;
-- authorityKeyIdentifier of the certificate: which CA key generation signed
-- it, so each generation's CRL covers the certificates that key issued
-- (CPS §5.6: CRLs for both keys while certificates of the old key live).
ALTER TABLE issuances ADD COLUMN issuer_key_id BLOB;

CREATE INDEX issuances_facts_missing ON issuances (serial) WHERE der IS NOT NULL AND not_after IS NULL;
CREATE INDEX issuances_held_expiry ON issuances (not_after) WHERE state = 'held';
