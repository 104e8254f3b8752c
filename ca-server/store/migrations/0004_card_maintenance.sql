-- 0004: card maintenance at the counter: a PIN reset (unblock) or the
-- destruction of the private keys, by a script the CA protects for one card
-- over the secure channel, as for issuance (TS Arts. 6(ii), 7(ii)). No PIN
-- is ever sent to the CA or kept here (CPS §6.4.1.2).
--   authorised -> done (the card's attestation of the script verified)
CREATE TABLE card_maintenance (
	id                 TEXT PRIMARY KEY,
	terminal_id        TEXT NOT NULL REFERENCES terminals(id),
	request_id         TEXT NOT NULL,
	request_sha256     BLOB NOT NULL CHECK (length(request_sha256) = 32),
	operator_id        TEXT NOT NULL,
	channel_id         TEXT NOT NULL UNIQUE REFERENCES channels(id),
	card_serial        TEXT NOT NULL,
	operation          TEXT NOT NULL CHECK (operation IN ('pin-reset', 'key-destruction')),
	targets            TEXT NOT NULL CHECK (targets IN ('sign', 'auth', 'sign,auth')),
	state              TEXT NOT NULL CHECK (state IN ('authorised', 'done')),
	-- the protected APDUs (MAC'd commands, no key material), kept until done
	-- so a retried request gets the same script
	script             BLOB,
	channel_state      BLOB NOT NULL,
	created_at         INTEGER NOT NULL,
	done_at            INTEGER,
	confirm_request_id TEXT,
	confirm_sha256     BLOB,
	UNIQUE (terminal_id, request_id),
	CHECK ((state = 'done') = (done_at IS NOT NULL AND confirm_sha256 IS NOT NULL AND confirm_request_id IS NOT NULL))
) STRICT;

-- Which certificates a card holds: the CA authorises maintenance only on a
-- card it delivered a certificate to.
CREATE INDEX issuances_card_serial ON issuances (lower(card_serial));
