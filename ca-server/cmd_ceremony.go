package main

// Key-ceremony sub-commands (local only; TS Art. 20(1)(iii), 42(1)(iii)).
// Secrets never come from flag values: each custodian types their own
// passphrase at the terminal (no echo), or it is read from a file
// descriptor (secret_input.go). Outside --dev (TS Art. 27, 45; CPS §6.2)
// every new share is sealed under its custodian's own passphrase
// (ceremony.PassphraseRule) and written to that custodian's own
// destination (--share-out NAME=PATH, one directory per custodian).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/hsm"
)

func init() {
	register(command{"ceremony-init", "key ceremony: create the token, CA keys, certificates, card master keys", runCeremonyInit})
	register(command{"ceremony-activate", "key ceremony: M custodians activate the CA keys (check and record)", runCeremonyActivate})
	register(command{"ceremony-backup", "key ceremony: M-of-N backup of the CA keys under a split KEK", runCeremonyBackup})
	register(command{"ceremony-restore", "key ceremony: restore CA keys from a backup onto a new token", runCeremonyRestore})
	register(command{"ceremony-destroy", "key ceremony: destroy every copy of the CA keys (M custodians)", runCeremonyDestroy})
	register(command{"card-batch", "key ceremony: derive static keys for N new cards (manufacturer batch file)", runCardBatch})
	register(command{"ceremony-rollover", "key ceremony: new CA key and certificate, link certificates; old key signs CRLs only", runCeremonyRollover})
	register(command{"ceremony-retire", "key ceremony: destroy a superseded CA key once its certificates have expired", runCeremonyRetire})
	register(command{"ceremony-rekey-card-masters", "key ceremony: replace the card issuer master keys with a backup-wrappable set", runCeremonyRekeyMasters})
	register(command{"ca-fingerprints", "print the SHA-256 and SHA-1 fingerprints of the CA and link certificates for publication", runCAFingerprints})
}

// caRoles maps --ca values to ceremony roles.
var caRoles = map[string]string{"signature": ceremony.RoleSignatureCA, "user-authentication": ceremony.RoleAuthCA}

func caRole(v string) (string, error) {
	r, ok := caRoles[v]
	if !ok {
		return "", fmt.Errorf("%w: --ca %q: want signature or user-authentication", errUsage, v)
	}
	return r, nil
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// ceremonyFlags are shared by every ceremony command.
type ceremonyFlags struct {
	dataDir string
	module  string
	kwp     string
	dev     bool
}

func (c *ceremonyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dataDir, "data", "", "ca-server data directory (required)")
	fs.StringVar(&c.module, "module", "", "PKCS#11 module (default SoftHSM 2)")
	fs.StringVar(&c.kwp, "kwp-mechanism", "", "RFC 5649 wrap mechanism code (default 0x210A for SoftHSM; 0x210B on PKCS#11 3.0 HSMs)")
	fs.BoolVar(&c.dev, "dev", false, "run alone with 1-of-1 shares and generated passphrases: NOT FOR PRODUCTION")
}

func (c *ceremonyFlags) common(stdout, stderr io.Writer) (ceremony.Common, error) {
	if c.dataDir == "" {
		return ceremony.Common{}, fmt.Errorf("%w: --data is required", errUsage)
	}
	cfg := hsm.Config{ModulePath: c.module}
	if c.kwp != "" {
		v, err := strconv.ParseUint(c.kwp, 0, 32)
		if err != nil {
			return ceremony.Common{}, fmt.Errorf("%w: --kwp-mechanism %q", errUsage, c.kwp)
		}
		cfg.Mechanisms.AESKeyWrapPad = uint(v)
	}
	if c.dev {
		fmt.Fprintln(stderr, strings.Repeat("!", 72))
		fmt.Fprintln(stderr, "!!  --dev: ONE PERSON, 1-of-1 SHARES, PASSPHRASES ON DISK.")
		fmt.Fprintln(stderr, "!!  THIS IS NOT A KEY CEREMONY. NEVER USE IT FOR A PRODUCTION CA.")
		fmt.Fprintln(stderr, strings.Repeat("!", 72))
	}
	return ceremony.Common{DataDir: c.dataDir, HSM: cfg, Log: stdout}, nil
}

func (c *ceremonyFlags) devDir() string { return filepath.Join(c.dataDir, "dev-shares") }

func (c *ceremonyFlags) devPassphraseFile() string {
	return filepath.Join(c.devDir(), "dev.passphrase")
}

// devPassphrase returns the dev passphrase, creating it on first use.
func (c *ceremonyFlags) devPassphrase() (string, error) {
	if p, err := ceremony.ReadSecret("file:" + c.devPassphraseFile()); err == nil {
		return p, nil
	}
	if err := os.MkdirAll(c.devDir(), 0o700); err != nil {
		return "", err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	p := hex.EncodeToString(b)
	if err := os.WriteFile(c.devPassphraseFile(), []byte(p+"\n"), 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// shareHelp describes --share on every command that activates the token.
const shareHelp = "PATH[=SOURCE]: a custodian's token share; the custodian named in it is asked for their passphrase at the terminal (no echo), " +
	"or SOURCE is fd:N (file:/env: only with --dev); repeat M times"

// custodianFlags name the holders of newly split shares.
type custodianFlags struct {
	names       string
	passphrases listFlag // NAME=SOURCE
	threshold   int
	shareOuts   listFlag // NAME=PATH
	sharesOut   string   // --dev only
}

func (c *custodianFlags) register(fs *flag.FlagSet, what string) {
	fs.StringVar(&c.names, "custodians", "", "comma-separated names of the custodians who receive "+what+" shares")
	fs.Var(&c.passphrases, "passphrase", "NAME=SOURCE: where custodian NAME's own passphrase sealing their share is read: tty (the default: "+
		"asked twice at the terminal, no echo) or fd:N (a file descriptor); never a flag value. Required strength: "+ceremony.PassphraseRule+
		"; each custodian's differs. Repeat per custodian")
	fs.IntVar(&c.threshold, "threshold", 0, "number of custodians (M) needed to use the shares (at least 2)")
	fs.Var(&c.shareOuts, "share-out", "NAME=PATH: the new share file of custodian NAME, on their own medium; one per custodian, each in its own "+
		"directory, never in the data directory; an existing file is refused; written 0600. Repeat per custodian")
	fs.StringVar(&c.sharesOut, "shares-out", "", "--dev only: one directory for every share (NOT FOR PRODUCTION)")
}

func (c *custodianFlags) resolve(cf *ceremonyFlags) ([]ceremony.Custodian, int, string, error) {
	if cf.dev {
		if c.names != "" || c.threshold != 0 || len(c.shareOuts) > 0 || len(c.passphrases) > 0 {
			return nil, 0, "", fmt.Errorf("%w: --dev chooses the custodians itself", errUsage)
		}
		p, err := cf.devPassphrase()
		if err != nil {
			return nil, 0, "", err
		}
		out := c.sharesOut
		if out == "" {
			out = cf.devDir()
		}
		return []ceremony.Custodian{{Name: "dev", Passphrase: p}}, 1, out, nil
	}
	if c.sharesOut != "" {
		return nil, 0, "", fmt.Errorf("%w: --shares-out (one directory for every share) is for --dev only: give each custodian their own destination with --share-out NAME=PATH", errUsage)
	}
	if c.names == "" || c.threshold == 0 {
		return nil, 0, "", fmt.Errorf("%w: --custodians, --threshold and --share-out NAME=PATH for each custodian are required", errUsage)
	}
	pass, err := secretSources("passphrase", c.passphrases)
	if err != nil {
		return nil, 0, "", err
	}
	outs := map[string]string{}
	for _, v := range c.shareOuts {
		name, path, ok := strings.Cut(v, "=")
		if !ok || name == "" || path == "" {
			return nil, 0, "", fmt.Errorf("%w: --share-out %q: want NAME=PATH", errUsage, v)
		}
		if _, dup := outs[name]; dup {
			return nil, 0, "", fmt.Errorf("%w: --share-out given twice for %q", errUsage, name)
		}
		outs[name] = path
	}
	var cs []ceremony.Custodian
	for _, n := range strings.Split(c.names, ",") {
		n = strings.TrimSpace(n)
		if outs[n] == "" {
			return nil, 0, "", fmt.Errorf("%w: custodian %q has no --share-out %s=PATH (each custodian's share goes to their own medium)", errUsage, n, n)
		}
		cs = append(cs, ceremony.Custodian{Name: n, ShareOut: outs[n]})
	}
	for n := range pass {
		if !slices.ContainsFunc(cs, func(c ceremony.Custodian) bool { return c.Name == n }) {
			return nil, 0, "", fmt.Errorf("%w: --passphrase for %q, who is not a custodian", errUsage, n)
		}
	}
	for n := range outs {
		if !slices.ContainsFunc(cs, func(c ceremony.Custodian) bool { return c.Name == n }) {
			return nil, 0, "", fmt.Errorf("%w: --share-out for %q, who is not a custodian", errUsage, n)
		}
	}
	// Each custodian types their own passphrase, one after the other.
	for i := range cs {
		p, err := readNewSecret(pass[cs[i].Name], fmt.Sprintf("custodian %s, choose the passphrase sealing your share (at least %d characters): ", cs[i].Name, ceremony.MinPassphraseLen), false)
		if err != nil {
			return nil, 0, "", fmt.Errorf("custodian %q: %w", cs[i].Name, err)
		}
		cs[i].Passphrase = p
	}
	return cs, c.threshold, "", nil
}

// presentedShares are shares presented by custodians: PATH (the custodian
// is asked for their passphrase at the terminal) or PATH=SOURCE (tty or
// fd:N; file: and env: only with --dev). A --dev CA's share uses its dev
// passphrase.
func presentedShares(args []string, cf *ceremonyFlags, purpose string) ([]ceremony.PresentedShare, error) {
	if len(args) == 0 && cf.dev && purpose == ceremony.PurposeToken {
		m, _ := filepath.Glob(filepath.Join(cf.devDir(), purpose+"-*.share"))
		if len(m) == 0 {
			return nil, fmt.Errorf("%w: no dev share in %s", errUsage, cf.devDir())
		}
		args = m[len(m)-1:]
	}
	var out []ceremony.PresentedShare
	for _, a := range args {
		path, src, withSource := strings.Cut(a, "=")
		p := ceremony.PresentedShare{Path: path}
		switch {
		case withSource:
			s, err := readSecretSource(src, "", cf.dev)
			if err != nil {
				return nil, err
			}
			p.Passphrase = s
		case cf.dev:
			if s, err := ceremony.ReadSecret("file:" + cf.devPassphraseFile()); err == nil {
				p.Passphrase = s
			}
		default:
			// the header names the custodian to ask; it is bounded and
			// checked (argon2 cost) before anyone types anything
			sf, err := ceremony.ReadShareFile(path)
			if err != nil {
				return nil, err
			}
			if sf.Sealed != nil {
				s, err := readSecretSource("tty", fmt.Sprintf("custodian %s, your passphrase for %s: ", sf.Custodian, path), false)
				if err != nil {
					return nil, err
				}
				p.Passphrase = s
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// shareDests says where the new shares went, for the closing line.
func shareDests(cs []ceremony.Custodian, dir string) string {
	if dir != "" {
		return "in " + dir
	}
	var d []string
	for _, c := range cs {
		d = append(d, c.Name+": "+c.ShareOut)
	}
	return "at " + strings.Join(d, ", ")
}

func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}

func runCeremonyInit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ceremony-init", flag.ContinueOnError)
	var cf ceremonyFlags
	var cu custodianFlags
	cf.register(fs)
	cu.register(fs, "token PIN")
	sigName := fs.String("signature-ca-name", "JPKI Signature CA (Madoguchi)", "subject CN of the signature CA certificate")
	authName := fs.String("auth-ca-name", "JPKI User Authentication CA (Madoguchi)", "subject CN of the user-authentication CA certificate")
	label := fs.String("token-label", hsm.DefaultTokenLabel, "label of the new token")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	c, err := cf.common(stdout, stderr)
	if err != nil {
		return err
	}
	cs, m, out, err := cu.resolve(&cf)
	if err != nil {
		return err
	}
	st, err := ceremony.Init(context.Background(), ceremony.InitOptions{Common: c, Custodians: cs, Threshold: m, SharesDir: out,
		Names: ceremony.CANames{Signature: *sigName, UserAuth: *authName}, TokenLabel: *label, Dev: cf.dev})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ceremony %s done: %d keys in token %q; token shares %s (%d of %d needed)\n",
		st.Ceremony, len(st.Keys), st.TokenLabel, shareDests(cs, out), m, len(cs))
	for _, k := range st.Keys {
		if k.Certificate != "" {
			_, until := k.UsablePeriod()
			fmt.Fprintf(stdout, "  %-14s %s  usable until %s\n", k.Role, k.Certificate, until.Format(time.DateOnly))
		}
	}
	return nil
}

func runCeremonyActivate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ceremony-activate", flag.ContinueOnError)
	var cf ceremonyFlags
	var shares listFlag
	cf.register(fs)
	fs.Var(&shares, "share", shareHelp)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	c, err := cf.common(stdout, stderr)
	if err != nil {
		return err
	}
	ps, err := presentedShares(shares, &cf, ceremony.PurposeToken)
	if err != nil {
		return err
	}
	a, err := ceremony.Activate(context.Background(), ceremony.ActivateOptions{Common: c, Shares: ps})
	if err != nil {
		return err
	}
	defer a.HSM.Close()
	fmt.Fprintf(stdout, "activation by %s succeeded; CA keys match their certificates\n", strings.Join(a.Who, ", "))
	for _, role := range []string{ceremony.RoleSignatureCA, ceremony.RoleAuthCA} {
		k, _ := a.IssuingKey(role)
		fmt.Fprintf(stdout, "  %-14s generation %d issuing until %s\n", role, k.Record.Gen(), k.IssueUntil().Format(time.DateOnly))
		for _, c := range a.CRLOnlyKeys(role) {
			fmt.Fprintf(stdout, "  %-14s generation %d CRL-only until %s\n", role, c.Record.Gen(), c.Record.CRLSigningUntil.Format(time.DateOnly))
		}
	}
	return nil
}

func runCeremonyBackup(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ceremony-backup", flag.ContinueOnError)
	var cf ceremonyFlags
	var cu custodianFlags
	var shares listFlag
	cf.register(fs)
	cu.register(fs, "backup KEK")
	fs.Var(&shares, "share", shareHelp)
	outDir := fs.String("out", "", "directory for the backup file (required)")
	noMasters := fs.Bool("without-card-master-keys", false, "back up a CA initialised before master-key backup without its card master keys (a restored CA then cannot serve cards in stock)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	c, err := cf.common(stdout, stderr)
	if err != nil {
		return err
	}
	if *outDir == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	ps, err := presentedShares(shares, &cf, ceremony.PurposeToken)
	if err != nil {
		return err
	}
	cs, m, sharesOut, err := cu.resolve(&cf)
	if err != nil {
		return err
	}
	path, err := ceremony.Backup(context.Background(), ceremony.BackupOptions{Common: c, Shares: ps, Custodians: cs, Threshold: m,
		SharesDir: sharesOut, OutDir: *outDir, Dev: cf.dev, WithoutMasterKeys: *noMasters})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup written to %s; KEK shares %s (%d of %d needed)\n", path, shareDests(cs, sharesOut), m, len(cs))
	return nil
}

func runCeremonyRestore(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ceremony-restore", flag.ContinueOnError)
	var cf ceremonyFlags
	var cu custodianFlags
	var kekShares listFlag
	cf.register(fs)
	cu.register(fs, "new token PIN")
	fs.Var(&kekShares, "kek-share", "PATH[=SOURCE]: a custodian's backup KEK share, as --share; repeat M times")
	backup := fs.String("backup", "", "backup file to restore (required)")
	label := fs.String("token-label", hsm.DefaultTokenLabel, "label of the new token")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	c, err := cf.common(stdout, stderr)
	if err != nil {
		return err
	}
	if *backup == "" || len(kekShares) == 0 {
		return fmt.Errorf("%w: --backup and --kek-share are required", errUsage)
	}
	ps, err := presentedShares(kekShares, &ceremonyFlags{dataDir: cf.dataDir, dev: cf.dev}, ceremony.PurposeBackupKEK)
	if err != nil {
		return err
	}
	cs, m, sharesOut, err := cu.resolve(&cf)
	if err != nil {
		return err
	}
	st, err := ceremony.Restore(context.Background(), ceremony.RestoreOptions{Common: c, BackupFile: *backup, KEKShares: ps,
		Custodians: cs, Threshold: m, SharesDir: sharesOut, TokenLabel: *label, Dev: cf.dev})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %d keys into token %q; new token shares %s\n", len(st.Keys), st.TokenLabel, shareDests(cs, sharesOut))
	return nil
}

func runCeremonyDestroy(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ceremony-destroy", flag.ContinueOnError)
	var cf ceremonyFlags
	var shares listFlag
	cf.register(fs)
	fs.Var(&shares, "share", shareHelp)
	confirm := fs.String("confirm", "", `must be "destroy-all-ca-keys"`)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *confirm != "destroy-all-ca-keys" {
		return fmt.Errorf(`%w: --confirm destroy-all-ca-keys is required`, errUsage)
	}
	c, err := cf.common(stdout, stderr)
	if err != nil {
		return err
	}
	ps, err := presentedShares(shares, &cf, ceremony.PurposeToken)
	if err != nil {
		return err
	}
	if err := ceremony.Destroy(context.Background(), ceremony.DestroyOptions{Common: c, Shares: ps}); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "every CA key object and every listed backup file was destroyed")
	return nil
}

func runCardBatch(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("card-batch", flag.ContinueOnError)
	var cf ceremonyFlags
	var shares listFlag
	cf.register(fs)
	fs.Var(&shares, "share", shareHelp)
	count := fs.Int("count", 0, "number of new cards (required)")
	out := fs.String("out", "", `batch file to create: "serial-hex enc-hex mac-hex dek-hex" per line (required)`)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *count <= 0 || *out == "" {
		return fmt.Errorf("%w: --count and --out are required", errUsage)
	}
	c, err := cf.common(stdout, stderr)
	if err != nil {
		return err
	}
	ps, err := presentedShares(shares, &cf, ceremony.PurposeToken)
	if err != nil {
		return err
	}
	if err := ceremony.CardBatch(context.Background(), ceremony.CardBatchOptions{Common: c, Shares: ps, Count: *count, Out: *out}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d card key sets written to %s (mode 0600): hand it to the card manufacturer only\n", *count, *out)
	return nil
}

func runCeremonyRollover(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ceremony-rollover", flag.ContinueOnError)
	var cf ceremonyFlags
	var shares listFlag
	cf.register(fs)
	fs.Var(&shares, "share", shareHelp)
	ca := fs.String("ca", "", "the CA whose key is replaced: signature or user-authentication (required)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	role, err := caRole(*ca)
	if err != nil {
		return err
	}
	c, err := cf.common(stdout, stderr)
	if err != nil {
		return err
	}
	ps, err := presentedShares(shares, &cf, ceremony.PurposeToken)
	if err != nil {
		return err
	}
	st, err := ceremony.Rollover(context.Background(), ceremony.RolloverOptions{Common: c, Shares: ps, Role: role})
	if err != nil {
		return err
	}
	k, _ := st.IssuingKey(role)
	fmt.Fprintf(stdout, "rollover done: %s generation %d issues from now on; publish the fingerprints above (ca-server ca-fingerprints)\n", role, k.Gen())
	return nil
}

func runCeremonyRetire(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ceremony-retire", flag.ContinueOnError)
	var cf ceremonyFlags
	var shares listFlag
	cf.register(fs)
	fs.Var(&shares, "share", shareHelp)
	ca := fs.String("ca", "", "signature or user-authentication (required)")
	gen := fs.Int("generation", 0, "the CRL-only key generation to destroy (required)")
	validUntil := fs.String("issued-valid-until", "", "YYYY-MM-DD: latest expiry of any unexpired certificate the key issued (from the CA store), to retire before its CA certificate ends")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	role, err := caRole(*ca)
	if err != nil {
		return err
	}
	if *gen <= 0 {
		return fmt.Errorf("%w: --generation is required", errUsage)
	}
	var until time.Time
	if *validUntil != "" {
		if until, err = time.Parse(time.DateOnly, *validUntil); err != nil {
			return fmt.Errorf("%w: --issued-valid-until %q: want YYYY-MM-DD", errUsage, *validUntil)
		}
		until = until.AddDate(0, 0, 1) // the whole day
	}
	c, err := cf.common(stdout, stderr)
	if err != nil {
		return err
	}
	ps, err := presentedShares(shares, &cf, ceremony.PurposeToken)
	if err != nil {
		return err
	}
	if err := ceremony.Retire(context.Background(), ceremony.RetireOptions{Common: c, Shares: ps, Role: role, Generation: *gen, IssuedValidUntil: until}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s key generation %d destroyed in the token and removed from every listed backup\n", role, *gen)
	return nil
}

func runCeremonyRekeyMasters(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ceremony-rekey-card-masters", flag.ContinueOnError)
	var cf ceremonyFlags
	var shares listFlag
	cf.register(fs)
	fs.Var(&shares, "share", shareHelp)
	confirm := fs.String("confirm", "", `must be "replace-card-master-keys": cards made from the old master keys stop working`)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *confirm != "replace-card-master-keys" {
		return fmt.Errorf("%w: --confirm replace-card-master-keys is required", errUsage)
	}
	c, err := cf.common(stdout, stderr)
	if err != nil {
		return err
	}
	ps, err := presentedShares(shares, &cf, ceremony.PurposeToken)
	if err != nil {
		return err
	}
	if _, err := ceremony.RekeyMasterKeys(context.Background(), ceremony.RekeyMasterKeysOptions{Common: c, Shares: ps}); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "card master keys replaced; make new card batches and a new backup")
	return nil
}

// runCAFingerprints prints the fingerprints for publication (G Art.
// 10(ii)); it needs no custodian, only the (public) certificates.
func runCAFingerprints(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ca-fingerprints", flag.ContinueOnError)
	dataDir := fs.String("data", "", "ca-server data directory (required)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *dataDir == "" {
		return fmt.Errorf("%w: --data is required", errUsage)
	}
	st, err := ceremony.LoadState(*dataDir)
	if err != nil {
		return err
	}
	certs, err := ceremony.PublishedFingerprints(st)
	if err != nil {
		return err
	}
	for _, c := range certs {
		what := fmt.Sprintf("%s CA certificate, generation %d (%s)", c.Role, c.Generation, c.Status)
		if c.Kind != "ca" {
			what = fmt.Sprintf("%s link certificate %s, generations %d→%d", c.Role, c.Kind, c.Generation-1, c.Generation)
		}
		fmt.Fprintf(stdout, "%s\n  subject   %s\n  validity  %s .. %s\n  SHA-256   %s\n  SHA-1     %s\n",
			what, c.Subject, c.NotBefore, c.NotAfter, ceremony.Colons(c.SHA256), ceremony.Colons(c.SHA1))
	}
	return nil
}
