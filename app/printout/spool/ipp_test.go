package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// response builds an IPP response: status, request id, and one job group with job-id and
// job-state, then end-of-attributes.
func response(status uint16, requestID uint32, jobID, state int32) []byte {
	b := []byte{1, 1}
	b = binary.BigEndian.AppendUint16(b, status)
	b = binary.BigEndian.AppendUint32(b, requestID)
	b = append(b, tagOperation)
	for _, a := range []struct {
		tag       byte
		name, val string
	}{{tagCharset, "attributes-charset", "utf-8"}, {tagLanguage, "attributes-natural-language", "en"}} {
		b = append(b, a.tag)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.name)))
		b = append(b, a.name...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.val)))
		b = append(b, a.val...)
	}
	b = append(b, tagJob)
	for _, a := range []struct {
		tag  byte
		name string
		v    int32
	}{{tagInteger, "job-id", jobID}, {tagEnum, "job-state", state}} {
		b = append(b, a.tag)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.name)))
		b = append(b, a.name...)
		b = binary.BigEndian.AppendUint16(b, 4)
		b = binary.BigEndian.AppendUint32(b, uint32(a.v))
	}
	return append(b, tagEnd)
}

func TestDecodeResponse(t *testing.T) {
	raw := response(0, 7, 42, jobCompleted)
	r, err := decodeResponse(raw)
	if err != nil {
		t.Fatal(err)
	}
	g := r.group(tagJob)
	if id, _ := g.int("job-id"); id != 42 || r.requestID != 7 || r.status != 0 {
		t.Fatalf("decoded %+v", r)
	}
	if s, _ := g.int("job-state"); s != jobCompleted {
		t.Fatalf("job-state %d", s)
	}
	// Every truncation is an error, never a panic or a short success.
	for n := range len(raw) {
		if _, err := decodeResponse(raw[:n]); err == nil {
			t.Fatalf("a response cut to %d of %d bytes decoded", n, len(raw))
		}
	}
}

func TestEncodeRequestMultiValued(t *testing.T) {
	b, err := encodeRequest(opGetPrinterAttributes, 3, []ippAttr{str(tagKeyword, "requested-attributes", "a", "bc")})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 1, 0, 0x0B, 0, 0, 0, 3, tagOperation,
		tagKeyword, 0, 20}
	want = append(want, "requested-attributes"...)
	want = append(want, 0, 1, 'a', tagKeyword, 0, 0, 0, 2, 'b', 'c', tagEnd)
	if string(b) != string(want) {
		t.Fatalf("encoded\n%x\nwant\n%x", b, want)
	}
}

// fakeServer answers every request with fn's result.
func fakeServer(t *testing.T, fn func(w http.ResponseWriter, body []byte)) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := readLimited(r.Body, 1<<20)
		fn(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Options{Server: strings.TrimPrefix(srv.URL, "http://"), Queue: "q"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAnswersThatAreNotIPPAreRefused(t *testing.T) {
	cases := map[string]func(w http.ResponseWriter, body []byte){
		"http 401": func(w http.ResponseWriter, _ []byte) { w.WriteHeader(http.StatusUnauthorized) },
		"wrong request id": func(w http.ResponseWriter, body []byte) {
			w.Write(response(0, binary.BigEndian.Uint32(body[4:8])+1, 1, jobCompleted))
		},
		"garbage": func(w http.ResponseWriter, _ []byte) { w.Write([]byte("<html>")) },
		"empty body": func(w http.ResponseWriter, body []byte) {
			w.Write(response(0, binary.BigEndian.Uint32(body[4:8]), 1, jobCompleted)[:0])
		},
		"forbidden": func(w http.ResponseWriter, body []byte) {
			w.Write(response(0x0401, binary.BigEndian.Uint32(body[4:8]), 1, jobCompleted))
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			err := fakeServer(t, fn).Wait(context.Background(), 1)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v, want ErrRefused", err)
			}
		})
	}
}

func TestNotAcceptingIsQueueStopped(t *testing.T) {
	c := fakeServer(t, func(w http.ResponseWriter, body []byte) {
		w.Write(response(statusNotAccepting, binary.BigEndian.Uint32(body[4:8]), 0, 0))
	})
	if _, err := c.Submit(context.Background(), "t", []byte("%PDF-")); !errors.Is(err, ErrQueueStopped) {
		t.Fatalf("err = %v, want ErrQueueStopped", err)
	}
}
