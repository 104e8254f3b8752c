package workflow

import (
	"errors"
	"testing"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/resident"
)

var now = time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)

var applicant = resident.Resident{RecordCode: "90000000011", Name: "髙橋 一郎", NameKana: "タカハシ イチロウ",
	BirthDate: "1985-03-15", Sex: "M", Address: "神奈川県架空市髙尾町五丁目10番11号", Status: resident.StatusResident}

var goodID = Evidence{Document: MyNumberCard}

func nameSub() []resident.Substitution {
	return []resident.Substitution{
		{Field: "name", Pos: 0, Original: "髙", Substitute: "高", ChosenByApp: true},
		{Field: "address", Pos: 7, Original: "髙", Substitute: "高"},
	}
}

func open(t *testing.T, k Kind) *Case {
	t.Helper()
	c, err := Open(k, applicant, []CertType{SignatureCert, UserAuthCert}, false, now.AddDate(0, 2, 0), "rc1", now)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTransitions: every event in every state, for an issuance kind and a non-issuance kind:
// allowed events move to the documented state, others are refused with InvalidTransition and
// leave the case as it was.
func TestTransitions(t *testing.T) {
	type step struct {
		name string
		do   func(c *Case) error
	}
	steps := []step{
		{"identity", func(c *Case) error { return c.RecordIdentity(goodID) }},
		{"explanation", func(c *Case) error { return c.RecordExplanation(RequiredItems(c.CertTypes)) }},
		{"approve", func(c *Case) error { return c.Approve("rc1") }},
		{"refuse", func(c *Case) error { return c.Refuse("rc1", "申請書の記載不備") }},
		{"stop", func(c *Case) error { return c.Stop("申請者の取り下げ") }},
		{"complete", func(c *Case) error { return c.Complete() }},
	}
	// reach brings a fresh case of kind k to state s.
	reach := func(k Kind, s State) *Case {
		c := open(t, k)
		c.SetSubstitutions(nameSub())
		path := map[State][]int{Opened: {}, IdentityChecked: {0}, Explained: {0, 1}, Approved: {0, 1, 2}, Completed: {0, 1, 2, 5}, Refused: {3}, Stopped: {4}}[s]
		if !k.issues() && s == Approved {
			path = []int{0, 2}
		}
		if !k.issues() && s == Completed {
			path = []int{0, 2, 5}
		}
		for _, i := range path {
			if err := steps[i].do(c); err != nil {
				t.Fatalf("reach %s via %s: %v", s, steps[i].name, err)
			}
		}
		return c
	}
	want := map[Kind]map[State]map[string]State{
		NewIssuance: {
			Opened:          {"identity": IdentityChecked, "refuse": Refused, "stop": Stopped},
			IdentityChecked: {"explanation": Explained, "refuse": Refused, "stop": Stopped},
			Explained:       {"approve": Approved, "refuse": Refused, "stop": Stopped},
			Approved:        {"complete": Completed, "refuse": Refused, "stop": Stopped},
			Completed:       {}, Refused: {}, Stopped: {},
		},
		Revocation: {
			Opened:          {"identity": IdentityChecked, "refuse": Refused, "stop": Stopped},
			IdentityChecked: {"approve": Approved, "refuse": Refused, "stop": Stopped},
			Approved:        {"complete": Completed, "refuse": Refused, "stop": Stopped},
			Completed:       {}, Refused: {}, Stopped: {},
		},
	}
	for kind, states := range want {
		for state, allowed := range states {
			for _, st := range steps {
				t.Run(string(kind)+"/"+string(state)+"/"+st.name, func(t *testing.T) {
					c := reach(kind, state)
					err := st.do(c)
					if to, ok := allowed[st.name]; ok {
						if err != nil || c.State != to {
							t.Fatalf("err = %v, state = %s; want %s", err, c.State, to)
						}
						return
					}
					if !errors.Is(err, apperr.InvalidTransition) {
						t.Fatalf("err = %v, want InvalidTransition", err)
					}
					if c.State != state {
						t.Fatalf("state changed to %s", c.State)
					}
				})
			}
		}
	}
}

func TestIdentityRules(t *testing.T) {
	proxy := Evidence{Document: DriversLicence, Proxy: true, PowerOfAttorney: true, InquiryReply: true, ProxyName: "代理 一子", ProxyDocument: Passport}
	cases := []struct {
		name string
		e    func() Evidence
		want apperr.Kind
		to   State
	}{
		{"photo id", func() Evidence { return goodID }, 0, IdentityChecked},
		{"health insurance card is no photo id", func() Evidence { return Evidence{Document: "health_insurance_card"} }, apperr.InvalidInput, Opened},
		{"proxy complete", func() Evidence { return proxy }, 0, IdentityChecked},
		{"proxy without 委任状", func() Evidence { e := proxy; e.PowerOfAttorney = false; return e }, apperr.InvalidInput, Opened},
		{"proxy without 照会書回答書", func() Evidence { e := proxy; e.InquiryReply = false; return e }, apperr.InvalidInput, Opened},
		{"proxy without own photo id", func() Evidence { e := proxy; e.ProxyDocument = ""; return e }, apperr.InvalidInput, Opened},
		{"doubt stops", func() Evidence { e := goodID; e.Doubt = "写真と本人の容貌が異なる"; return e }, apperr.IdentityDoubt, Stopped},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := open(t, NewIssuance)
			err := cs.RecordIdentity(c.e())
			if c.want == 0 && err != nil || c.want != 0 && !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if cs.State != c.to {
				t.Fatalf("state = %s, want %s", cs.State, c.to)
			}
		})
	}
}

func TestExplanationsRequired(t *testing.T) {
	c := open(t, NewIssuance)
	c.RecordIdentity(goodID)
	if err := c.RecordExplanation([]Item{ProtectKey, ReportLoss, LegalEffect}); !errors.Is(err, apperr.InvalidInput) || c.State != IdentityChecked {
		t.Fatalf("without false-application item: %v, %s", err, c.State)
	}
	// User-auth only: the Art. 9(2) items suffice.
	u, _ := Open(NewIssuance, applicant, []CertType{UserAuthCert}, true, time.Time{}, "rc1", now)
	u.RecordIdentity(goodID)
	if err := u.RecordExplanation([]Item{ProtectKey, ReportLoss}); err != nil {
		t.Fatal(err)
	}
	// 外字 do not matter for a user-auth-only certificate (no personal data, CPS §7.1).
	if err := u.Approve("rc1"); err != nil {
		t.Fatal(err)
	}
}

func TestGaijiSubstitution(t *testing.T) {
	c := open(t, NewIssuance)
	c.RecordIdentity(goodID)
	c.RecordExplanation(RequiredItems(c.CertTypes))
	if err := c.Approve("rc1"); !errors.Is(err, apperr.InvalidInput) || c.State != Explained {
		t.Fatalf("approve with unsubstituted 外字: %v, %s", err, c.State)
	}
	bad := nameSub()
	bad[1].Substitute = "たか" // address substitutes are fixed
	if err := c.SetSubstitutions(bad); !errors.Is(err, apperr.InvalidInput) || c.Substitutions != nil {
		t.Fatalf("free address substitute: %v", err)
	}
	kana := nameSub()
	kana[0].Substitute = "たか" // the applicant may choose the kana reading for a name
	if err := c.SetSubstitutions(kana); err != nil {
		t.Fatal(err)
	}
	if err := c.Approve("rc1"); err != nil {
		t.Fatal(err)
	}
	name, _ := resident.Apply(applicant.Name, "name", c.Substitutions)
	if name != "たか橋 一郎" {
		t.Fatalf("substituted name = %q", name)
	}
}

func TestRenewalWindow(t *testing.T) {
	if _, err := Open(Renewal, applicant, []CertType{SignatureCert}, false, now.AddDate(0, 3, 1), "rc1", now); !errors.Is(err, apperr.RenewalTooEarly) {
		t.Fatalf("4 months left: %v", err)
	}
	if _, err := Open(Renewal, applicant, []CertType{SignatureCert}, false, now.AddDate(0, 3, -1), "rc1", now); err != nil {
		t.Fatalf("just under 3 months: %v", err)
	}
	dead := applicant
	dead.Status = resident.StatusDeceased
	if _, err := Open(Revocation, dead, nil, false, time.Time{}, "rc1", now); !errors.Is(err, apperr.ResidentNotEligible) {
		t.Fatalf("deceased: %v", err)
	}
	c := open(t, Revocation)
	if err := c.Refuse("rc1", " "); !errors.Is(err, apperr.ReasonRequired) || c.State != Opened {
		t.Fatalf("refusal without reason: %v", err)
	}
}

func TestIssuanceStates(t *testing.T) {
	order := []IssuanceState{IssStarted, IssChannelOpened, IssPrepared, IssWritten, IssPINSet, IssVerified, IssDelivered}
	for i := 0; i+1 < len(order); i++ {
		if !CanAdvance(order[i], order[i+1]) || !CanAdvance(order[i], IssAborting) {
			t.Errorf("%s → next/abort refused", order[i])
		}
		if i+2 < len(order) && CanAdvance(order[i], order[i+2]) {
			t.Errorf("%s → %s (a jump) allowed", order[i], order[i+2])
		}
	}
	if CanAdvance(IssDelivered, IssAborting) || CanAdvance(IssAborted, IssStarted) || !CanAdvance(IssAborting, IssAborted) {
		t.Error("final states not final")
	}
}
