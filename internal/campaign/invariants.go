package campaign

import (
	"bytes"
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the CA store on postgres runs
	_ "modernc.org/sqlite"

	"madoguchi/cardio"
)

// The invariants are read from the three places that hold the truth: the CA's store, the
// terminal's journal and audit log, and the card itself (over PC/SC, as OpenSC would). They
// only read: nothing here changes the system under test.

// journalRow is one row of the terminal's issuance journal.
type journalRow struct {
	RequestID, CertType, State, CAIssuance, CardSerial, Cleanup string
}

// caRow is one CA issuance.
type caRow struct {
	ID, RequestID, State, Serial, CertType string
	DER                                    []byte
	Reason                                 sql.NullInt64
	Deadline                               int64
}

// stores opens the two databases read-only for the checks.
type stores struct {
	term *sql.DB
	ca   *sql.DB
	pg   bool
}

func openStores(s *Stack) (*stores, error) {
	term, err := sql.Open("sqlite", "file:"+s.TerminalDB()+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, err
	}
	st := &stores{term: term}
	if s.cfg.DB == "postgres" {
		st.pg = true
		st.ca, err = sql.Open("pgx", s.directDSN)
	} else {
		st.ca, err = sql.Open("sqlite", "file:"+filepath.Join(s.caData, "ca.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	}
	if err != nil {
		term.Close()
		return nil, err
	}
	return st, nil
}

func (st *stores) Close() {
	st.term.Close()
	st.ca.Close()
}

// q rewrites ? placeholders for PostgreSQL.
func (st *stores) q(query string) string {
	if !st.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (st *stores) journal(ctx context.Context, caseID int64) ([]journalRow, error) {
	rows, err := st.term.QueryContext(ctx, `SELECT request_id, cert_type, state, ca_issuance, card_serial, card_cleanup FROM issuance_journal WHERE case_id = ? ORDER BY started_at`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []journalRow
	for rows.Next() {
		var j journalRow
		if err := rows.Scan(&j.RequestID, &j.CertType, &j.State, &j.CAIssuance, &j.CardSerial, &j.Cleanup); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

func (st *stores) allJournalRequests(ctx context.Context) (map[string]string, error) {
	rows, err := st.term.QueryContext(ctx, `SELECT request_id, state FROM issuance_journal`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			return nil, err
		}
		out[id] = state
	}
	return out, rows.Err()
}

const caCols = `id, request_id, state, serial, cert_type, der, revocation_reason, deadline`

func scanCA(rows *sql.Rows) ([]caRow, error) {
	defer rows.Close()
	var out []caRow
	for rows.Next() {
		var c caRow
		if err := rows.Scan(&c.ID, &c.RequestID, &c.State, &c.Serial, &c.CertType, &c.DER, &c.Reason, &c.Deadline); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (st *stores) caByRequest(ctx context.Context, requestID string) (*caRow, error) {
	rows, err := st.ca.QueryContext(ctx, st.q(`SELECT `+caCols+` FROM issuances WHERE request_id = ?`), requestID)
	if err != nil {
		return nil, err
	}
	rs, err := scanCA(rows)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return &rs[0], nil
}

func (st *stores) caBySerial(ctx context.Context, serial string) (*caRow, error) {
	rows, err := st.ca.QueryContext(ctx, st.q(`SELECT `+caCols+` FROM issuances WHERE lower(serial) = lower(?)`), serial)
	if err != nil {
		return nil, err
	}
	rs, err := scanCA(rows)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return &rs[0], nil
}

func (st *stores) caAll(ctx context.Context) ([]caRow, error) {
	rows, err := st.ca.QueryContext(ctx, `SELECT `+caCols+` FROM issuances`)
	if err != nil {
		return nil, err
	}
	return scanCA(rows)
}

// globalViolations checks what must hold at every moment the system is at rest: at most one
// valid certificate per person and type (CPS §4.3.1.1), no key fingerprint twice (TS Art.
// 5(iii)), nothing the CA issued that the terminal's journal does not know, and nothing left
// neither delivered nor revoked once its deadline and a sweep have passed.
func (st *stores) globalViolations(ctx context.Context, sweepGrace time.Duration) ([]string, error) {
	var v []string
	var n int
	if err := st.ca.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT person_hash, cert_type FROM issuances WHERE state IN ('delivered','held') GROUP BY person_hash, cert_type HAVING count(*) > 1) d`).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		v = append(v, fmt.Sprintf("%d person/type pairs hold more than one valid certificate", n))
	}
	if err := st.ca.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT key_sha256 FROM issuances GROUP BY key_sha256 HAVING count(*) > 1) d`).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		v = append(v, fmt.Sprintf("%d key fingerprints issued twice", n))
	}
	all, err := st.caAll(ctx)
	if err != nil {
		return nil, err
	}
	journal, err := st.allJournalRequests(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, c := range all {
		js, known := journal[c.RequestID]
		switch {
		case !known && (c.State == "delivered" || c.State == "held"):
			v = append(v, fmt.Sprintf("CA issuance %s (%s) is %s but the terminal's journal has no request %s (lost)", c.ID, c.CertType, c.State, c.RequestID))
		case (c.State == "issuing" || c.State == "prepared") && now.After(time.Unix(0, c.Deadline).Add(sweepGrace)):
			v = append(v, fmt.Sprintf("CA issuance %s (%s) still %s %v after its deadline (neither delivered nor revoked)", c.ID, c.CertType, c.State, now.Sub(time.Unix(0, c.Deadline)).Round(time.Second)))
		case known && js == "delivered" && c.State == "revoked" && c.Reason.Valid && c.Reason.Int64 == 0:
			v = append(v, fmt.Sprintf("CA issuance %s (%s) revoked before delivery but the terminal journal says delivered (both)", c.ID, c.CertType))
		case known && js == "aborted" && (c.State == "delivered" || c.State == "held"):
			v = append(v, fmt.Sprintf("CA issuance %s (%s) %s but the terminal journal says aborted (both)", c.ID, c.CertType, c.State))
		}
	}
	return v, nil
}

// pendingAtCA reports whether any CA issuance of the case's requests is still issuing or
// prepared (the sweeper's to resolve once its deadline passes).
func (st *stores) pendingAtCA(ctx context.Context, rows []journalRow) (bool, error) {
	for _, j := range rows {
		c, err := st.caByRequest(ctx, j.RequestID)
		if err != nil {
			return false, err
		}
		if c != nil && (c.State == "issuing" || c.State == "prepared") {
			return true, nil
		}
	}
	return false, nil
}

// caseOutcome is what became of one issuance case.
type caseOutcome struct {
	Delivered, Revoked, NotIssued int // certificates
	Serials                       map[string]string
	Violations                    []string
	Duplicated                    int
	Lost                          int
}

// checkIssuance checks one resolved issuance case: every journal row final; a delivered row
// has its CA issuance delivered, the same DER on the card, verifying under the CA
// certificate; an aborted row has its CA issuance revoked with reason 0 (or none at all) and
// the card does not carry it as a valid certificate unless the journal marks the card for
// re-personalisation; the terminal's and the CA's audit logs record it.
func (st *stores) checkIssuance(ctx context.Context, s *Stack, caseID int64, want []string, sigPIN string) (caseOutcome, error) {
	out := caseOutcome{Serials: map[string]string{}}
	rows, err := st.journal(ctx, caseID)
	if err != nil {
		return out, err
	}
	if len(rows) == 0 {
		// Refused before anything was started (e.g. the card was unreadable at the ownership
		// check): nothing was issued.
		out.NotIssued = len(want)
	}
	delivered := map[string]int{}
	var onCard *cardio.Certificates
	var cardErr error
	cardRead := false
	for _, j := range rows {
		if j.State != "delivered" && j.State != "aborted" {
			out.Violations = append(out.Violations, fmt.Sprintf("journal request %s (%s) left in state %s after recovery", j.RequestID, j.CertType, j.State))
			continue
		}
		c, err := st.caByRequest(ctx, j.RequestID)
		if err != nil {
			return out, err
		}
		if j.State == "delivered" {
			delivered[j.CertType]++
			if c == nil || (c.State != "delivered" && c.State != "held") {
				state := "absent"
				if c != nil {
					state = c.State
				}
				out.Violations = append(out.Violations, fmt.Sprintf("journal says %s delivered but the CA's issuance is %s", j.CertType, state))
				out.Lost++
				continue
			}
			out.Delivered++
			out.Serials[j.CertType] = c.Serial
			if !cardRead {
				onCard, cardErr = readCard(s, sigPIN)
				cardRead = true
			}
			if cardErr != nil {
				out.Violations = append(out.Violations, fmt.Sprintf("delivered card unreadable: %v", cardErr))
				continue
			}
			if msg := cardHolds(s, onCard, j.CertType, c.DER); msg != "" {
				out.Violations = append(out.Violations, msg)
				out.Lost++
			}
			continue
		}
		// aborted
		switch {
		case c == nil:
			out.NotIssued++
		case c.State == "revoked" && c.Reason.Valid && c.Reason.Int64 == 0:
			out.Revoked++
		default:
			out.Violations = append(out.Violations, fmt.Sprintf("journal says %s aborted but the CA's issuance %s is %s (reason %v)", j.CertType, c.ID, c.State, c.Reason))
			continue
		}
		if c != nil && j.Cleanup == "" {
			// The card must not carry the revoked certificate as if it were valid.
			if !cardRead {
				onCard, cardErr = readCard(s, sigPIN)
				cardRead = true
			}
			if cardErr == nil && c.DER != nil && cardHolds(s, onCard, j.CertType, c.DER) == "" {
				out.Violations = append(out.Violations, fmt.Sprintf("the card carries the %s certificate revoked before delivery (%s) and the journal does not mark it for re-personalisation", j.CertType, c.Serial))
			}
		}
	}
	for typ, n := range delivered {
		if n > 1 {
			out.Duplicated += n - 1
			out.Violations = append(out.Violations, fmt.Sprintf("%d %s certificates delivered in one case", n, typ))
		}
	}
	// Both audit trails record the case.
	var n int
	if err := st.term.QueryRowContext(ctx, `SELECT count(*) FROM audit_log WHERE target = ? AND action LIKE 'issuance.%'`, strconv.FormatInt(caseID, 10)).Scan(&n); err != nil {
		return out, err
	}
	if len(rows) > 0 && n == 0 {
		out.Violations = append(out.Violations, "the terminal's audit log has no issuance record of the case")
	}
	for _, j := range rows {
		if j.CAIssuance == "" {
			continue
		}
		if err := st.ca.QueryRowContext(ctx, st.q(`SELECT count(*) FROM audit_records WHERE target = ? OR detail LIKE ?`), j.CAIssuance, "%"+j.CAIssuance+"%").Scan(&n); err != nil {
			return out, err
		}
		if n == 0 {
			out.Violations = append(out.Violations, fmt.Sprintf("the CA's audit log has no record of issuance %s", j.CAIssuance))
		}
	}
	return out, nil
}

// readCard reads the card in the stack's reader as OpenSC would: the certificate files, the
// signature certificate after its PIN.
func readCard(s *Stack, sigPIN string) (c *cardio.Certificates, err error) {
	for i := 0; i < 5; i++ {
		if c, err = readCardOnce(s, sigPIN); err == nil {
			return c, nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return nil, err
}

func readCardOnce(s *Stack, sigPIN string) (c *cardio.Certificates, err error) {
	err = withCard(s, func(ctx context.Context, card *cardio.Card) error {
		if sigPIN != "" {
			_ = card.VerifyPIN(ctx, cardio.Signature, []byte(sigPIN)) // a card without it reads without the signature cert
		}
		c, err = card.ReadCertificates(ctx)
		return err
	})
	return c, err
}

// cardHolds returns "" when the card carries der as its certificate of type typ and der
// verifies under the CA certificate of that type; else what is wrong.
func cardHolds(s *Stack, c *cardio.Certificates, typ string, der []byte) string {
	var got []byte
	caFile := s.authCAPEM
	switch typ {
	case "signature":
		got, caFile = c.Signature, s.signCAPEM
	case "user_auth":
		got = c.UserAuth
	default:
		return "unknown certificate type " + typ
	}
	if !bytes.Equal(got, der) {
		return fmt.Sprintf("the card does not carry the delivered %s certificate", typ)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Sprintf("the card's %s certificate does not parse: %v", typ, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return err.Error()
	}
	blk, _ := pem.Decode(caPEM)
	if blk == nil {
		return caFile + " is not PEM"
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return err.Error()
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return fmt.Sprintf("the card's %s certificate does not verify under the CA: %v", typ, err)
	}
	return ""
}

// auditVerify runs both audit chain verifications: `ca-server audit verify` and the
// terminal's `cli audit verify`.
func auditVerify(s *Stack) []string {
	var v []string
	args := []string{"audit", "verify", "--data-dir", s.caData}
	if s.cfg.DB == "postgres" {
		args = append(args, "--database", s.directDSN)
	}
	if out, err := s.caRun(args...); err != nil {
		v = append(v, fmt.Sprintf("ca-server audit verify: %v: %s", err, lastLines(out, 5)))
	}
	r := s.CLI(CLIRun{Stdin: supPass, Args: []string{"-user", "sup", "audit", "verify"}})
	if r.Code != 0 {
		v = append(v, fmt.Sprintf("terminal audit verify: exit %d: %s", r.Code, lastLines(r.Out+r.Err, 5)))
	}
	return v
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// secretsInLogs scans every log of the run for the applicant PINs used (signature PINs: long
// enough to be found only where leaked) and for private key material.
func secretsInLogs(dir string, secrets []string) ([]string, error) {
	var v []string
	keyPEM := regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(path, ".log") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, sec := range secrets {
			if sec != "" && bytes.Contains(b, []byte(sec)) {
				v = append(v, fmt.Sprintf("a PIN appears in %s", path))
				break
			}
		}
		if keyPEM.Match(b) {
			v = append(v, fmt.Sprintf("private key material appears in %s", path))
		}
		return nil
	})
	return v, err
}
