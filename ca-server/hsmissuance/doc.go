// Package hsmissuance implements the dependencies of ca-server/issuance over
// the HSM: user key generation (directly or from a pre-generated pool), the
// wrapping of a user key for one card session, the host end of the card
// secure channel, the certificate issuer with the CA keys as HSM signers, and
// the applicant checker with the person key computed by HMAC in the HSM.
//
// Rules and their reasons:
//
//   - TS Art. 1(iv), Art. 5; CPS §6.1.1.2: user key pairs are generated in the
//     HSM (RSA-2048, e = 65537) as session objects marked extractable only
//     for wrapping to a card (hsm.ExtractableForCard).
//   - TS Art. 5(iii): a key generated before must never be used again. The
//     issuance service records every public key's fingerprint in the store
//     at use time and refuses a repeat; a pool key goes through the same
//     check when it is taken, and a pool key is handed out once only.
//   - TS Art. 5(iv), 6(iii); CPS §6.2.3–6.2.6: the private key leaves the HSM
//     only wrapped (RFC 5649) under the session DEK of the target card, and
//     the HSM copy is destroyed by the wrap itself (cardkeys.WrapForCard),
//     whether wrapping succeeds or not. No escrow, no backup.
//   - TS Arts. 6(ii), 7(ii): the CA authenticates the card by its cryptogram
//     (scp.NewHostSession) before any key is generated, and the card
//     authenticates the CA by the host cryptogram and MACs of the script.
//   - TS Art. 8(3): a CA key signs for at most 4 years from its generation
//     date as recorded by the key ceremony.
//
// Concurrency: every type here is safe for concurrent use. HSM calls borrow
// one session of the *hsm.HSM's pool per operation, so the HSM must be opened
// with at least as many sessions as goroutines that should run HSM work at
// once (request handlers plus pool workers).
package hsmissuance
