// Package hsm is ca-server's only door to key material: a PKCS#11 client over
// github.com/miekg/pkcs11 that provisions the embedded SoftHSM token, pools
// sessions, and offers the few key operations the CA needs (RSA and AES key
// generation, a crypto.Signer, AES-CMAC, AES-ECB key derivation, RFC 5649 key
// wrapping, destruction).
//
// # Sessions and concurrency
//
// PKCS#11 sessions are not safe for concurrent use (two goroutines on one
// SoftHSM session crash it), so an *HSM owns a fixed pool of sessions and
// every operation borrows exactly one through a single helper (do)
// and returns it when done: one session is used by one goroutine at a time.
// All methods of *HSM are safe for concurrent use. Login state is per process
// (PKCS#11 §5.5), so the pool logs in once. Close stops new calls (they fail
// with ErrClosed), waits for calls in flight, then logs out and finalises:
// C_Finalize while calls are in flight crashes the module.
//
// Faults heal (heal.go): a session lost to the token (closed, device
// error, token removed, login lost) is replaced, the login restored with
// the PIN kept in memory since Open, token objects found again (handles
// change with a new login), and the operation retried once when repeating
// it is safe. Each call has a deadline; a call past it keeps its session
// until it returns, and Check (readiness) fails meanwhile.
//
// Only one *HSM may be open per PKCS#11 module in a process, because
// C_Initialize is process-wide and SoftHSM reads SOFTHSM2_CONF only then.
//
// # Tokens and keys
//
// A token is found by its label, never by slot id (slot ids change when a
// token is initialised). Keys are named by CKA_LABEL plus CKA_ID; a private
// key and its public key share both.
//
// # Extractability (TS Art. 5(iv), 8; CPS §6.2)
//
// Every private and secret key is CKA_SENSITIVE; its value can never be read.
// Keys are non-extractable unless the caller asks for one of two narrow
// exceptions, chosen with KeyOptions.Extractable:
//
//   - ExtractableForCard: a user's key pair, generated as a session object and
//     wrapped exactly once for the target card under a session key derived in
//     the HSM, then destroyed (TS Art. 5(iv): the CA deletes its copy after
//     transfer). CKA_WRAP_WITH_TRUSTED is not set: the wrapping key is a
//     per-session derived key and SoftHSM lets only the SO mark keys
//     CKA_TRUSTED, which a running CA never logs in as.
//   - ExtractableForBackup: a CA key, the person-hash HMAC key or a card
//     issuer master key, which the key ceremony wraps under the custodians'
//     backup KEK (TS Art. 27: backup by splitting key information among
//     several people). Such keys are still sensitive and carry
//     CKA_WRAP_WITH_TRUSTED: the only way out is KWP under a CKA_TRUSTED
//     KEK, which only the SO can create and which is itself split with
//     Shamir among custodians; a logged-in user wrapping them under any
//     other key gets ErrKeyNotWrappable.
//
// Keys derived in the HSM (card static and session keys) are never
// ExtractableForBackup.
//
// # Mechanisms
//
// RFC 5649 AES key wrap with padding has two codes: SoftHSM 2 uses the old
// vendor-neutral 0x210A, PKCS#11 3.0 names CKM_AES_KEY_WRAP_KWP 0x210B. The
// code comes from Config.Mechanisms so a real HSM needs no code change.
// Unwrapped RSA keys from SoftHSM are PKCS#8 DER followed by 1–7 zero bytes;
// TrimPKCS8Padding strips them.
//
// Tests run against a real SoftHSM 2 token (Debian softhsm2, module
// /usr/lib/softhsm/libsofthsm2.so) created in a temporary directory.
package hsm
