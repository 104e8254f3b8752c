package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/profile"
	"madoguchi/ca-server/status"
)

func init() {
	register(command{name: "crl", summary: "crl publish --now (M custodians) | crl archive --at TIME: CRLs and ARLs", run: runCRL})
	register(command{name: "compromise-drill", summary: "CA compromise: revoke everything a CA key signed (reason 2) and publish at once", run: runCompromiseDrill})
}

// activeStatus activates the CA keys with the custodians' shares and
// returns a revocation service that can sign CRLs with every key
// generation; close releases the HSM. It builds no issuance dependencies:
// those destroy leftover user keys, which a running server may own.
func activeStatus(ctx context.Context, cf *ceremonyFlags, database, profilesDir string, shares []string, stdout, stderr io.Writer) (*status.Service, func(), *local, error) {
	var profiles *profile.Set
	if profilesDir != "" {
		var err error
		if profiles, err = profile.Load(profilesDir); err != nil {
			return nil, nil, nil, err
		}
	}
	common, err := cf.common(stdout, stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	ps, err := presentedShares(shares, cf, ceremony.PurposeToken)
	if err != nil {
		return nil, nil, nil, err
	}
	active, err := ceremony.Activate(ctx, ceremony.ActivateOptions{Common: common, Shares: ps})
	if err != nil {
		return nil, nil, nil, err
	}
	l, err := openLocal(ctx, cf.dataDir, database)
	if err != nil {
		active.HSM.Close()
		return nil, nil, nil, err
	}
	svc, err := newStatusService(l, cf.dataDir, active, nil, nil, nil, nil, profiles)
	closeAll := func() { l.Close(); active.HSM.Close() }
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return svc, closeAll, l, nil
}

func runCRL(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: crl publish|archive [flags]", errUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("crl "+sub, flag.ContinueOnError)
	var cf ceremonyFlags
	var shares listFlag
	cf.register(fs)
	fs.StringVar(&cf.dataDir, "data-dir", "", "data directory (same as --data)")
	database := databaseFlag(fs)
	fs.Var(&shares, "share", shareHelp)
	profilesDir := fs.String("profiles", "", "directory overriding the embedded certificate profiles (as given to serve: their crlShards partition the CRLs)")
	shard := fs.Int("shard", -1, "archive: the shard of a partitioned CRL (the profile's crlShards; -1: unpartitioned)")
	now := fs.Bool("now", false, "publish: a new CRL and ARL of every CA at once (CPS §4.9.7)")
	ca := fs.String("ca", "signature", "archive: signature or user-auth")
	arl := fs.Bool("arl", false, "archive: the ARL instead of the CRL")
	generation := fs.Int("generation", 0, "archive: the CA key generation whose CRL to write (default: the issuing key's; CPS §5.6: each key generation has its own CRL)")
	at := fs.String("at", "", "archive: the instant (RFC 3339, e.g. 2026-11-22T10:00:00+09:00) whose CRL in force to write")
	out := fs.String("out", "", "archive: file to write the DER to (default stdout)")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ctx := context.Background()
	switch sub {
	case "publish":
		if !*now {
			return fmt.Errorf("%w: crl publish needs --now (the server publishes every 24 hours by itself)", errUsage)
		}
		svc, closeAll, _, err := activeStatus(ctx, &cf, *database, *profilesDir, shares, stdout, stderr)
		if err != nil {
			return err
		}
		defer closeAll()
		ps, err := svc.PublishAll(ctx, status.TriggerOnDemand)
		for _, p := range ps {
			fmt.Fprintf(stdout, "%s #%v: %d entries, %s .. %s\n", p.Series, p.Meta.Number, p.Entries, p.Meta.ThisUpdate.Format(time.RFC3339), p.Meta.NextUpdate.Format(time.RFC3339))
		}
		return err
	case "archive":
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("%w: --at %q: want RFC 3339, e.g. 2026-11-22T10:00:00+09:00", errUsage, *at)
		}
		if *ca != "signature" && *ca != "user-auth" {
			return fmt.Errorf("%w: --ca %q: want signature or user-auth", errUsage, *ca)
		}
		l, err := openLocal(ctx, cf.dataDir, *database)
		if err != nil {
			return err
		}
		defer l.Close()
		svc, err := newStatusService(l, cf.dataDir, nil, nil, nil, nil, nil, nil)
		if err != nil {
			return err
		}
		gen := *generation
		if gen == 0 {
			gen = issuingGeneration(cf.dataDir, *ca)
		}
		series := status.SeriesName(*ca, gen, *arl)
		if !*arl { // ARLs are not partitioned
			series = status.ShardSeries(*ca, gen, *shard)
		}
		rc, m, err := svc.ArchivedCRL(series, t)
		if err != nil {
			return err
		}
		defer rc.Close()
		w := stdout
		if *out != "" {
			f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		if _, err := io.Copy(w, rc); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "%s #%v, in force %s .. %s\n", series, m.Number, m.ThisUpdate.Format(time.RFC3339), m.NextUpdate.Format(time.RFC3339))
		return nil
	default:
		return fmt.Errorf("%w: unknown crl command %q (publish, archive)", errUsage, sub)
	}
}

// runCompromiseDrill: CPS §4.9.1.1(3), §4.9.12(1).
func runCompromiseDrill(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compromise-drill", flag.ContinueOnError)
	var cf ceremonyFlags
	var shares listFlag
	cf.register(fs)
	fs.StringVar(&cf.dataDir, "data-dir", "", "data directory (same as --data)")
	database := databaseFlag(fs)
	fs.Var(&shares, "share", shareHelp)
	profilesDir := fs.String("profiles", "", "directory overriding the embedded certificate profiles (as given to serve: their crlShards partition the CRLs)")
	ca := fs.String("ca", "", "signature or user-auth")
	confirm := fs.String("confirm", "", `must be "revoke-everything-signed-by-<ca>"`)
	operator := fs.String("operator", defaultOperator(), "who runs the drill (audit record)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if (*ca != "signature" && *ca != "user-auth") || *confirm != "revoke-everything-signed-by-"+*ca {
		return fmt.Errorf("%w: --ca signature|user-auth and --confirm revoke-everything-signed-by-<ca> are required", errUsage)
	}
	ctx := context.Background()
	svc, closeAll, _, err := activeStatus(ctx, &cf, *database, *profilesDir, shares, stdout, stderr)
	if err != nil {
		return err
	}
	defer closeAll()
	n, ps, err := svc.CompromiseDrill(ctx, *ca, *operator)
	fmt.Fprintf(stdout, "%d certificates revoked with reason 2 (cACompromise)\n", n)
	for _, p := range ps {
		fmt.Fprintf(stdout, "%s #%v published: %d entries\n", p.Series, p.Meta.Number, p.Entries)
	}
	return err
}

// issuingGeneration reads the issuing key generation of the CA named ca
// from the ceremony state (1 when there is none).
func issuingGeneration(dataDir, ca string) int {
	st, err := ceremony.LoadState(dataDir)
	if err != nil {
		return 1
	}
	for _, r := range statusCARoles {
		if r.name != ca {
			continue
		}
		if k, err := st.IssuingKey(r.role); err == nil {
			return k.Gen()
		}
	}
	return 1
}
