// Package scp is Madoguchi's card secure channel, shaped on GlobalPlatform SCP03 (AES-128):
// AES-CMAC, the SCP03 KDF, card and host cryptograms, secure messaging (C-MAC, C-DEC, R-MAC,
// R-ENC with MAC chaining and an encryption counter), card-key diversification by serial and
// RFC 5649 key wrap, with the host end (HostSession, the CA) and the card end (CardSession,
// the virtual card's management applet).
//
// Key hierarchy (docs/CARD-PROTOCOL.md): issuer master keys MK-ENC, MK-MAC, MK-DEK (in the
// CA's HSM) → card static keys K = AES-128-ECB(MK, serial) → session keys S-ENC, S-MAC,
// S-RMAC from the SCP03 KDF with context host challenge ‖ card challenge, and
// S-DEK = AES-128-ECB(K-DEK, host challenge ‖ card challenge). The host computes the KDF as
// single CMAC calls under the static keys (HostKeys), because the HSM has no SP 800-108 KDF.
//
// Why: TS Art. 6(ii) and 7(ii) require the card and the issuing side to authenticate each
// other by exchanged random numbers; TS Art. 5(iv) and 6(iii) require the private key to
// leave the key generator only encrypted for the target card; TS Art. 6(iv) that it can never
// be read back. The terminal relays APDUs but holds no key that could read or forge them.
//
// Concurrency: HostSession and CardSession are not safe for concurrent use; everything else
// (CMAC, KDF, WrapKWP, SoftwareIssuer) is.
package scp
