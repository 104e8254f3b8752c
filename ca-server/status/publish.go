package status

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/store"
)

// Publication triggers, kept with each published CRL.
const (
	TriggerSchedule     = "schedule"
	TriggerOnDemand     = "on-demand"
	TriggerCACompromise = "ca-compromise"
)

// Published describes one CRL or ARL written to the archive.
type Published struct {
	CA         string
	Generation int
	Series     string
	Meta       crl.Meta
	Entries    int
	// Shard of Shards for a partitioned CRL (Shards 1: the one CRL; 0: an ARL).
	Shard, Shards int
}

// snapshotEntries adapts a store snapshot to the streaming writer; both of
// the writer's passes read the same snapshot.
func snapshotEntries(ctx context.Context, snap *store.RevokedSnapshot) crl.Entries {
	return func(yield func(crl.Entry) bool) error {
		var bad error
		buf := make([]byte, 0, 20)
		err := snap.Each(ctx, func(serial string, at time.Time, reason int) bool {
			if len(serial)%2 == 1 {
				serial = "0" + serial
			}
			b, err := hex.AppendDecode(buf[:0], []byte(serial))
			if err != nil {
				bad = fmt.Errorf("status: stored serial %q: %w", serial, err)
				return false
			}
			buf = b
			return yield(crl.Entry{Serial: b, RevokedAt: at, Reason: crl.Reason(reason)})
		})
		return errors.Join(err, bad)
	}
}

// PublishAll publishes a new CRL and ARL of every CA now.
func (s *Service) PublishAll(ctx context.Context, trigger string) ([]Published, error) {
	var out []Published
	for _, ca := range s.cfg.CAs {
		ps, err := s.Publish(ctx, ca.Name, trigger)
		out = append(out, ps...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// Publish issues a new CRL (one per shard when the profile partitions it:
// CA.CRLPartition) and ARL of the CA named caName now (CPS §4.9.7)
// for each of its key generations still signing CRLs (CPS §5.6), archives
// them (TS Art. 17) and records and audits each publication. Each
// generation's CRL lists the revoked and held certificates that key issued
// (by authority key identifier; those of unknown issuer go on every
// generation's CRL), leaving out certificates that expired before the last
// regular interval: the CPS's CRL lists certificates revoked within their
// validity (glossary, "CRL"), and RFC 5280 §5.1.2.6 asks that an entry
// stay until one scheduled CRL issued after the certificate expired.
func (s *Service) Publish(ctx context.Context, caName, trigger string) ([]Published, error) {
	ca, err := s.CA(caName)
	if err != nil {
		return nil, err
	}
	if ca.Signer == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoSigner, caName)
	}
	if s.cfg.Archive == nil {
		return nil, errors.New("status: no CRL archive configured")
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if _, err := s.cfg.Store.FillCertificateFacts(ctx); err != nil {
		return nil, err
	}
	now := s.cfg.Clock()
	gens := ca.Generations()
	var out []Published
	for i, g := range gens {
		if i > 0 && !g.Until.IsZero() && !now.Before(g.Until) {
			continue // CRL signing ended: every certificate of that key has expired
		}
		if g.Signer == nil {
			return out, fmt.Errorf("%w: %s generation %d", ErrNoSigner, caName, g.Generation)
		}
		q := store.SnapshotQuery{Type: ca.CertType, ValidAt: now.Add(-s.cfg.CRLInterval)}
		if len(gens) > 1 {
			if i == 0 {
				for _, o := range gens[1:] {
					q.ExceptIssuers = append(q.ExceptIssuers, o.Certificate.SubjectKeyId)
				}
			} else {
				q.OnlyIssuer = g.Certificate.SubjectKeyId
			}
		}
		// RFC 5280 §5.2.5: a partitioned CRL is one CRL per serial range,
		// each with a critical issuingDistributionPoint naming the URL its
		// certificates carry; one shard is the unpartitioned CRL of before
		// (no issuingDistributionPoint).
		part := ca.Partition(g.Certificate)
		n := max(part.Shards, 1)
		for shard := range n {
			var idp *crl.IssuingDistributionPoint
			lo, hi := part.Range(shard)
			if n > 1 {
				idp = part.IDP(shard)
			}
			sq := q
			sq.SerialFrom, sq.SerialBelow = lo, hi
			crlPub, err := s.publishOne(ctx, ca, g, ShardSeries(ca.Name, g.Generation, shardIndex(n, shard)), trigger, idp, func() (crl.Entries, func(), error) {
				snap, err := s.cfg.Store.RevokedSnapshotFor(ctx, sq)
				if err != nil {
					return nil, nil, err
				}
				// the store filters the range; RangeEntries keeps the shard exact whatever the store does
				return crl.RangeEntries(snapshotEntries(ctx, snap), lo, hi), func() { snap.Close() }, nil
			})
			if err != nil {
				return out, err
			}
			crlPub.Shard, crlPub.Shards = shard, n
			out = append(out, crlPub)
		}
		arlSeries := SeriesName(ca.Name, g.Generation, true)
		arlPub, err := s.publishOne(ctx, ca, g, arlSeries, trigger, &crl.IssuingDistributionPoint{OnlyContainsCACerts: true}, func() (crl.Entries, func(), error) {
			ars, err := s.cfg.Store.AuthorityRevocations(ctx, arlSeries)
			if err != nil {
				return nil, nil, err
			}
			es := make([]crl.Entry, 0, len(ars))
			for _, a := range ars {
				n, ok := new(big.Int).SetString(a.Serial, 16)
				if !ok {
					return nil, nil, fmt.Errorf("status: stored ARL serial %q", a.Serial)
				}
				es = append(es, crl.Entry{Serial: n.Bytes(), RevokedAt: a.RevokedAt, Reason: crl.Reason(a.Reason)})
			}
			return crl.SliceEntries(es), func() {}, nil
		})
		if err != nil {
			return out, err
		}
		out = append(out, arlPub)
	}
	return out, nil
}

func (s *Service) publishOne(ctx context.Context, ca CA, g KeyGeneration, series, trigger string, idp *crl.IssuingDistributionPoint,
	source func() (crl.Entries, func(), error)) (Published, error) {
	pub, err := func() (Published, error) {
		num, err := s.cfg.Store.NextCRLNumber(ctx, series)
		if err != nil {
			return Published{}, err
		}
		src, done, err := source()
		if err != nil {
			return Published{}, err
		}
		defer done()
		now := s.cfg.Clock()
		meta, res, err := crl.Issue(ctx, s.cfg.Archive, series, crl.Params{Issuer: g.Certificate, Signer: g.Signer, Number: big.NewInt(num),
			ThisUpdate: now, NextUpdate: now.Add(s.cfg.CRLValidity), IssuingDistributionPoint: idp}, src)
		if err != nil {
			return Published{}, err
		}
		if err := s.cfg.Store.RecordPublishedCRL(ctx, store.PublishedCRL{Series: series, Number: num, ThisUpdate: meta.ThisUpdate,
			NextUpdate: meta.NextUpdate, Entries: res.Entries, SHA256: res.TBSHash, Trigger: trigger}); err != nil {
			return Published{}, err
		}
		return Published{CA: ca.Name, Generation: g.Generation, Series: series, Meta: meta, Entries: res.Entries}, nil
	}()
	result, detail := "ok", ""
	if err != nil {
		result, detail = "error", err.Error()
	} else {
		detail = fmt.Sprintf("number %v, %d entries, %s, valid until %s", pub.Meta.Number, pub.Entries, trigger, pub.Meta.NextUpdate.Format(time.RFC3339))
	}
	if aerr := s.record(ctx, audit.Entry{Operator: "scheduler", Action: "crl.publish", Target: series, Result: result, Detail: detail}); aerr != nil {
		return pub, errors.Join(err, aerr)
	}
	return pub, err
}

// PublishDue publishes the CRLs and ARLs of every CA one of whose
// generations' last CRL is CRLInterval old or older, or has none (CPS
// §4.9.7: every 24 hours).
func (s *Service) PublishDue(ctx context.Context) ([]Published, error) {
	var out []Published
	now := s.cfg.Clock()
	for _, ca := range s.cfg.CAs {
		if ca.Signer == nil {
			continue
		}
		due := false
		for i, g := range ca.Generations() {
			if i > 0 && !g.Until.IsZero() && !now.Before(g.Until) {
				continue
			}
			n := max(ca.Partition(g.Certificate).Shards, 1)
			for shard := 0; shard < n && !due; shard++ {
				last, err := s.cfg.Store.LastPublishedCRL(ctx, ShardSeries(ca.Name, g.Generation, shardIndex(n, shard)))
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return out, err
				}
				due = err != nil || now.Sub(last.ThisUpdate) >= s.cfg.CRLInterval
			}
		}
		if !due {
			continue
		}
		ps, err := s.Publish(ctx, ca.Name, TriggerSchedule)
		out = append(out, ps...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// ExpireHolds ends the holds of certificates that have expired (CPS
// §4.9.16: a hold lasts only while the certificate is valid), audits each,
// and tells the OCSP hook. The schedule calls it.
func (s *Service) ExpireHolds(ctx context.Context) ([]store.Certificate, error) {
	if _, err := s.cfg.Store.FillCertificateFacts(ctx); err != nil {
		return nil, err
	}
	cs, err := s.cfg.Store.ExpireHolds(ctx, "scheduler", s.cfg.Clock())
	if err != nil {
		return nil, err
	}
	var aerr error
	for _, c := range cs {
		aerr = errors.Join(aerr, s.record(ctx, audit.Entry{Operator: "scheduler", Action: "certificate.hold-expired", Target: c.Serial, Result: "ok",
			Detail: "hold ended: the certificate expired (CPS §4.9.16)"}))
		s.changed(ctx, c)
	}
	return cs, aerr
}

// RunSchedule applies due change-driven revocations, ends expired holds and
// publishes due CRLs
// whenever tick delivers (and Config.Fence allows), until ctx ends. The caller owns the ticker (a
// minute is plenty), so tests drive it with an injected clock.
func (s *Service) RunSchedule(ctx context.Context, tick <-chan time.Time, after func(error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			ctx := ctx
			if s.cfg.Fence != nil {
				var ok bool
				if ctx, ok = s.cfg.Fence(ctx); !ok {
					continue // another replica holds the job lease
				}
			}
			_, err := s.ApplyDue(ctx)
			if err != nil {
				s.cfg.Logger.Error("status: change-driven revocations", "err", err)
			}
			if _, herr := s.ExpireHolds(ctx); herr != nil {
				s.cfg.Logger.Error("status: expired holds", "err", herr)
				err = errors.Join(err, herr)
			}
			if _, perr := s.PublishDue(ctx); perr != nil {
				s.cfg.Logger.Error("status: CRL publication", "err", perr)
				err = errors.Join(err, perr)
			}
			if after != nil {
				after(err)
			}
		}
	}
}

// CompromiseDrill treats the CA named caName as compromised (CPS
// §4.9.1.1(3), §4.9.12(1)): every certificate its keys signed is revoked
// with reason 2 in one transaction; the CA certificate of every key
// generation and every link certificate are listed in the ARL of the
// generation whose key signed them (CPS §7.2(2)(3)); and new CRLs and ARLs
// are published at once. It returns how many
// certificates it revoked.
func (s *Service) CompromiseDrill(ctx context.Context, caName, operator string) (int64, []Published, error) {
	ca, err := s.CA(caName)
	if err != nil {
		return 0, nil, err
	}
	if !validText(operator) {
		return 0, nil, errors.New("status: operator required")
	}
	now := s.cfg.Clock()
	n, err := s.cfg.Store.CompromiseCA(ctx, ca.CertType, ca.ARLSeries(), ca.Certificate.SerialNumber.Text(16), operator,
		"CA compromise: "+ca.Name, now)
	if err == nil {
		err = s.revokeAuthorities(ctx, ca, now)
	}
	result, detail := "ok", fmt.Sprintf("%d certificates revoked with reason 2", n)
	if err != nil {
		result, detail = "error", err.Error()
	}
	if aerr := s.record(ctx, audit.Entry{Operator: operator, Action: "ca.compromise", Target: ca.Name, Result: result, Detail: detail}); aerr != nil {
		return n, nil, errors.Join(err, aerr)
	}
	if err != nil {
		return 0, nil, err
	}
	ps, err := s.Publish(ctx, caName, TriggerCACompromise)
	return n, ps, err
}

// CurrentCRL opens the newest CRL of series from the archive.
func (s *Service) CurrentCRL(series string) (io.ReadCloser, crl.Meta, error) {
	if s.cfg.Archive == nil {
		return nil, crl.Meta{}, crl.ErrNotFound
	}
	all, err := s.cfg.Archive.List(series)
	if err != nil {
		return nil, crl.Meta{}, err
	}
	if len(all) == 0 {
		return nil, crl.Meta{}, fmt.Errorf("%w: %s", crl.ErrNotFound, series)
	}
	return s.cfg.Archive.Open(series, all[len(all)-1].Number)
}

// ArchivedCRL opens the CRL of series that was in force at instant at (the
// 失効情報ファイル, TS Art. 17).
func (s *Service) ArchivedCRL(series string, at time.Time) (io.ReadCloser, crl.Meta, error) {
	if s.cfg.Archive == nil {
		return nil, crl.Meta{}, crl.ErrNotFound
	}
	m, err := s.cfg.Archive.InForce(series, at)
	if err != nil {
		return nil, crl.Meta{}, err
	}
	return s.cfg.Archive.Open(series, m.Number)
}

// revokeAuthorities lists the older generations' CA certificates and the
// link certificates in the ARL of the generation that signed each.
func (s *Service) revokeAuthorities(ctx context.Context, ca CA, now time.Time) error {
	gens := ca.Generations()
	seriesOf := func(c *x509.Certificate) string {
		for _, g := range gens {
			if len(c.AuthorityKeyId) > 0 && string(c.AuthorityKeyId) == string(g.Certificate.SubjectKeyId) {
				return SeriesName(ca.Name, g.Generation, true)
			}
		}
		return ca.ARLSeries()
	}
	var err error
	for _, g := range gens[1:] {
		err = errors.Join(err, s.cfg.Store.AddAuthorityRevocation(ctx, store.AuthorityRevocation{Series: SeriesName(ca.Name, g.Generation, true),
			Serial: g.Certificate.SerialNumber.Text(16), RevokedAt: now, Reason: store.ReasonCACompromise}))
	}
	for _, l := range ca.Links {
		err = errors.Join(err, s.cfg.Store.AddAuthorityRevocation(ctx, store.AuthorityRevocation{Series: seriesOf(l),
			Serial: l.SerialNumber.Text(16), RevokedAt: now, Reason: store.ReasonCACompromise}))
	}
	return err
}
