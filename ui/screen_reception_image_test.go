package ui

import (
	"testing"

	"fyne.io/fyne/v2/test"

	"madoguchi/app/workflow"
)

// Reference images of the new-issuance wizard (see image_test.go for how to update them).

func TestImageReceptionIdentityProxy(t *testing.T) {
	h := newRecHarness(t)
	h.s.status.SetCard(CardPresent)
	h.s.status.SetCA(CAConnected)
	h.importFile()
	test.Tap(h.wiz.existenceNext)
	h.waitStep(stepIdentity)
	h.wiz.who.SetSelected(tr("reception.identity.proxy"))
	h.wiz.document.SetSelected(recDocumentName(workflow.MyNumberCard))
	test.Type(h.wiz.documentRef, "0123")
	test.Tap(h.wiz.poa)
	test.Type(h.wiz.proxyName, "佐藤 花子")
	waitFor(t, "UI work", func() bool { return true })
	test.AssertImageMatches(t, "reception_identity_proxy.png", h.w.Canvas().Capture())
}

func TestImageReceptionProgress(t *testing.T) {
	h := newRecHarness(t)
	gate := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	})
	h.desk.issue = recIssueOK(gate)
	h.s.status.SetCard(CardPresent)
	h.s.status.SetCA(CAConnected)
	h.importFile()
	h.identitySelf()
	h.explainAll()
	h.start()
	// Both certificates issued and written; the issuance waits before the PIN stage.
	waitFor(t, "the signature script", func() bool {
		return h.wiz.progress.running() == stageWrite && h.wiz.progress.detail[stageWrite] == recCertTypeName(workflow.SignatureCert)
	})
	test.AssertImageMatches(t, "reception_progress.png", h.w.Canvas().Capture())
	close(gate)
	recEnterPIN(h.pinScreen(PINUserAuth), "5830")
	recEnterPIN(h.pinScreen(PINSignature), "SAKURA73")
	h.waitStep(stepResult)
	waitFor(t, "the notice", func() bool { return h.wiz.savedPath() != "" })
}

func TestImageReceptionResult(t *testing.T) {
	h := newRecHarness(t)
	h.s.status.SetCard(CardPresent)
	h.s.status.SetCA(CAConnected)
	h.importFile()
	h.identitySelf()
	h.explainAll()
	h.start()
	recEnterPIN(h.pinScreen(PINUserAuth), "5830")
	recEnterPIN(h.pinScreen(PINSignature), "SAKURA73")
	h.waitStep(stepResult)
	waitFor(t, "the notice", func() bool { return h.wiz.savedPath() != "" })
	// The saved path holds the test's temporary directory: show a stable one in the image.
	h.wiz.noticePath.SetText(tr("reception.notice.saved_no_printer", map[string]any{"Path": "/var/lib/madoguchi/notices/notice-42.pdf"}))
	test.AssertImageMatches(t, "reception_result.png", h.w.Canvas().Capture())
}

func TestImageReceptionFileRenewal(t *testing.T) {
	h := newRecHarness(t)
	h.s.status.SetCard(CardPresent)
	h.s.status.SetCA(CAConnected)
	h.wiz.kind.SetSelected(tr("reception.kind.renewal"))
	h.wiz.files.SetSelected(h.wiz.files.Options[0])
	test.Type(h.wiz.currentExpiry, "2026-12-31")
	// The file's name holds its modification time: show a stable one in the image.
	h.wiz.files.Selected = "resident-90000000088.json（03/02 10:00）"
	h.wiz.files.Refresh()
	test.AssertImageMatches(t, "reception_file_renewal.png", h.w.Canvas().Capture())
}

func TestImageReceptionGaiji(t *testing.T) {
	h := newRecHarness(t)
	h.s.status.SetCard(CardPresent)
	h.s.status.SetCA(CAConnected)
	h.desk.applicant = gaijiApplicant()
	h.toGaiji()
	h.wiz.gaiji[0].candidates.SetSelected("高")
	test.AssertImageMatches(t, "reception_gaiji.png", h.w.Canvas().Capture())
}
