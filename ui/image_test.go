package ui

import (
	"testing"

	"fyne.io/fyne/v2/test"

	"madoguchi/app/apperr"
)

// The reference images under testdata/ are drawn with the bundled Noto Sans CJK JP font (the
// theme serves it for every text style), so they do not depend on the machine's fonts. After an
// intended change of a screen, inspect testdata/failed/*.png and copy it over the reference.

func TestImageLogin(t *testing.T) {
	s, w := newTestShell(t, newFakeBackend(receptionClerk()), Screens(), false)
	s.status.SetCard(CardAbsent)
	s.status.SetCA(CAConnected)
	test.AssertImageMatches(t, "login.png", w.Canvas().Capture())
}

func TestImageLoginFingerprintNoMatch(t *testing.T) {
	clerk := receptionClerk()
	clerk.result = apperr.New(apperr.FingerprintNoMatch, "auth: verify-no-match")
	s, w := newTestShell(t, newFakeBackend(clerk), Screens(), false)
	loginAs(t, s, "R001")
	test.AssertImageMatches(t, "login_fingerprint_no_match.png", w.Canvas().Capture())
}

func TestImageLoginPassword(t *testing.T) {
	s, w := newTestShell(t, newFakeBackend(exemptClerk()), Screens(), false)
	loginAs(t, s, "E001")
	test.Type(s.login.pwEntry, "secret")
	test.AssertImageMatches(t, "login_password.png", w.Canvas().Capture())
}

func TestImageHome(t *testing.T) {
	s, w := newTestShell(t, newFakeBackend(receptionClerk()), dutyScreens(), false)
	s.status.SetCard(CardPresent)
	s.status.SetCA(CAUnreachable)
	loginAs(t, s, "R001")
	test.AssertImageMatches(t, "home_reception.png", w.Canvas().Capture())
}

func TestImagePINSignature(t *testing.T) {
	h := newPINHarness(t, PINSignature)
	test.Type(h.p.first, "ABCDEF")
	test.Type(h.p.second, "AB")
	test.AssertImageMatches(t, "pin_signature.png", h.w.Canvas().Capture())
}

func TestImagePINUserAuthMismatch(t *testing.T) {
	h := newPINHarness(t, PINUserAuth)
	h.enter("5830", "5831")
	test.AssertImageMatches(t, "pin_user_auth_mismatch.png", h.w.Canvas().Capture())
}

func TestImageLoginEnglish(t *testing.T) {
	if err := UseLanguage("en"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UseLanguage("ja") })
	clerk := receptionClerk()
	clerk.result = apperr.New(apperr.FingerprintNoMatch, "auth: verify-no-match")
	s, w := newTestShell(t, newFakeBackend(clerk), Screens(), false)
	loginAs(t, s, "R001")
	if got := s.login.message.Text; got != "The fingerprint did not match. Please try again" {
		t.Errorf("message = %q", got)
	}
	test.AssertImageMatches(t, "login_fingerprint_no_match_en.png", w.Canvas().Capture())
}
