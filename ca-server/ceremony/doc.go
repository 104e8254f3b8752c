// Package ceremony runs ca-server's local key ceremonies — init, activate,
// backup, restore, destroy and card-key batches — with several custodians,
// recording every step (who, what, when, result) in a hash-chained record.
//
// Ceremonies are local sub-commands only: CA equipment is never
// administered over the network (TS Art. 20(1)(iii), 42(1)(iii)).
//
// # Custodians and secrets (TS Arts. 8, 27, 45; CPS §5.2.1.1, §6.2)
//
// Two kinds of secret are split M-of-N with Shamir
// (github.com/hashicorp/vault/shamir) into one share file per custodian,
// sealed under the custodian's own passphrase (argon2id, then AES-256-GCM
// with the share header as associated data). Outside a dev ceremony every
// share is sealed, each custodian's passphrase passes CheckPassphrase
// (MinPassphraseLen characters, no trivial ones, none alike) and each
// share goes to its custodian's own destination (Custodian.ShareOut: no
// two in one directory, none in the data dir, never over an existing
// file). ReadShareFile bounds a file's size and its argon2 parameters
// before anything is allocated, so a crafted file cannot exhaust memory:
//
//   - the token secret: the token's SO PIN and user PIN, chosen at random at
//     init (or restore) and never written anywhere else. Every use of the
//     keys — activation, backup, destruction, card batches — therefore needs
//     M custodians together.
//   - one backup KEK per backup: a random AES-256 key under which the CA keys
//     are wrapped (RFC 5649) into the backup file.
//
// A share file carries a check value (SHA-256 of the secret with a domain
// label) so too few or mixed shares fail clearly instead of yielding a wrong
// secret. --dev allows 1-of-1 "shares" (the whole secret), unsealed or in
// one directory, and is refused for a non-dev CA.
//
// Duties of the staff register (staff.go) are confirmed the same way: by
// each named person's own passphrase, checked against an argon2id
// credential in the register, never by the names typed.
//
// # Activation
//
// A CA key is usable by a running server only after M custodians present
// their token shares: the user PIN is reconstructed in memory by Activate,
// the token is logged in, each CA key is checked against its certificate
// (refuse to run on a mismatch) and against its usable period, and the open
// *hsm.HSM is handed to the caller. `ca-server serve` calls Activate at
// start with the shares presented at its console; the PIN never touches
// disk, so a restarted server is inactive until custodians activate it
// again, and stopping the server deactivates the keys. The
// `ceremony-activate` command performs and records the same activation and
// then closes again (a check that the custodians' shares work).
//
// # Usable period (TS Art. 8(3))
//
// Each key's generation date is recorded in the key inventory
// (ceremony/state.json). A CA key may sign for at most 4 years from its
// generation; KeyRecord.CheckUsable returns ErrCAKeyExpired afterwards and
// the issuer calls it before signing. Restoring from backup keeps the
// original generation date.
//
// # Extractability
//
// CA keys, the person-hash key and the card issuer master keys (MK-ENC,
// MK-MAC, MK-DEK) are generated hsm.ExtractableForBackup
// (CKA_WRAP_WITH_TRUSTED): they can be wrapped only under a CKA_TRUSTED key,
// which only the token SO can create — and the SO PIN exists only as
// custodian shares. All of them are in every backup, so a restored CA
// opens secure channels with the cards already in stock.
//
// Migration: CAs initialised before master keys were backed up (state
// version 1) have non-extractable master keys. Backup refuses them with
// ErrMasterKeysNotWrappable unless told to leave them out
// (WithoutMasterKeys); a CA restored from such a backup has no master keys
// (ErrNoMasterKeys from CardBatch and Active.CardKeys). RekeyMasterKeys
// replaces them with a wrappable set; cards made from the old set are then
// replaced.
//
// # Rollover (CPS §5.6, §7.1(3); TS Art. 8(3))
//
// Rollover gives a CA role a new key and self-signed certificate (same
// subject name) and the link certificates OldWithNew and NewWithOld. The
// old key becomes CRL-only: Activate returns it in Active.CRLOnly, its
// CAKey.IssuanceSigner refuses (ErrNotIssuingKey), its CAKey.CRLSigner
// signs CRLs and OCSP responses only, until CRLSigningUntil (its
// certificate's notAfter). Retire destroys it afterwards, in the token and
// in every backup file. Each key keeps its own 4-year issuance limit.
//
// # Service keys (servicekeys.go)
//
// Init also generates two RSA-2048 keys that are not CA keys but, like
// them, are usable only after activation and are backed up and destroyed
// with them: the audit checkpoint key (CPS §5.4: checkpoints of the audit
// chain are signed in the HSM; its end-entity certificate publishes the
// public key for `audit verify`) and the internal TLS CA key (its
// certificate, made by tlsca.SelfSign, is also the data dir's public
// tls-ca.crt). Activate returns them in Active.AuditCheckpoint and
// Active.TLSCA, checked against their certificates. A CA initialised before
// they existed activates with both nil; AddAuditKey gives it an audit key
// at its next `serve`, while its TLS CA stays the file key (a new TLS CA
// would orphan every enrolled terminal).
//
// # Fingerprints (G Art. 10(ii))
//
// Init and Rollover print and record the SHA-256 and SHA-1 fingerprints of
// every CA and link certificate; PublishedFingerprints lists them for
// publication (`ca-server ca-fingerprints`).
//
// Concurrency: ceremonies are run one at a time per data dir, by one
// process; functions here are not meant to run concurrently on one dir.
package ceremony
