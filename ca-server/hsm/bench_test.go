package hsm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"testing"
)

// BenchmarkGenerateRSA measures RSA-2048 session-key generation through the
// pool with 1 and 2 sessions, with Go's rsa.GenerateKey as the baseline in
// the same run.
func BenchmarkGenerateRSA(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("sessions-%d", n), func(b *testing.B) {
			h, _ := openTestToken(b, n)
			ctx := context.Background()
			b.SetParallelism(n) // goroutines = n × GOMAXPROCS; the pool admits n at a time
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					kp, err := h.GenerateRSA(ctx, "bench", KeyOptions{})
					if err != nil {
						b.Error(err)
						return
					}
					_ = h.Destroy(ctx, kp.Private)
					_ = h.Destroy(ctx, kp.Public)
				}
			})
		})
	}
	b.Run("go-baseline", func(b *testing.B) {
		for b.Loop() {
			if _, err := rsa.GenerateKey(rand.Reader, 2048); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSign measures PKCS#1 v1.5 SHA-256 signing with 1 and 2 sessions,
// with Go's rsa.SignPKCS1v15 as the baseline.
func BenchmarkSign(b *testing.B) {
	d := sha256.Sum256([]byte("bench"))
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("sessions-%d", n), func(b *testing.B) {
			h, _ := openTestToken(b, n)
			kp, err := h.GenerateRSA(context.Background(), "bench", KeyOptions{})
			if err != nil {
				b.Fatal(err)
			}
			s, _ := h.Signer(kp)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Sign(nil, d[:], crypto.SHA256); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("go-baseline", func(b *testing.B) {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		for b.Loop() {
			if _, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, d[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPoolKeyProbe is what the key pool adds to each issuance since
// issue 14 (hsmissuance Pool.GenerateUserKey asks the token whether a pooled
// key still exists: PublicKey on its private half), against the wrap of the
// same key for a card, which every issuance does anyway (same run).
func BenchmarkPoolKeyProbe(b *testing.B) {
	ctx := context.Background()
	h, _ := openTestToken(b, 1)
	kp, err := h.GenerateRSA(ctx, "bench", KeyOptions{Extractable: ExtractableForCard})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("probe", func(b *testing.B) {
		for b.Loop() {
			if _, err := h.PublicKey(ctx, kp.Private); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wrap-baseline", func(b *testing.B) {
		wk, err := h.GenerateAES(ctx, "bench-wrap", KeyOptions{Usage: UseWrap})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := h.WrapKWP(ctx, wk, kp.Private); err != nil {
				b.Fatal(err)
			}
		}
	})
}
