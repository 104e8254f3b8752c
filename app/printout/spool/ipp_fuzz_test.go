package spool

import (
	"encoding/binary"
	"reflect"
	"sort"
	"testing"
)

// encodeResponse writes r back in RFC 8010 form: header, each group's delimiter, each
// attribute as its first value named and the others with empty names (the unnamed
// attribute first, so its values stay unnamed), end-of-attributes.
func encodeResponse(r *ippResponse) []byte {
	b := []byte{1, 1}
	b = binary.BigEndian.AppendUint16(b, r.status)
	b = binary.BigEndian.AppendUint32(b, r.requestID)
	for _, g := range r.groups {
		b = append(b, g.tag)
		names := make([]string, 0, len(g.attrs))
		for n := range g.attrs {
			names = append(names, n)
		}
		sort.Strings(names) // "" sorts first
		for _, n := range names {
			for i, v := range g.attrs[n] {
				name := n
				if i > 0 {
					name = ""
				}
				b = append(b, v.tag)
				b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
				b = append(b, name...)
				b = binary.BigEndian.AppendUint16(b, uint16(len(v.data)))
				b = append(b, v.data...)
			}
		}
	}
	return append(b, tagEnd)
}

// FuzzDecodeIPPResponse: the print spooler's decoder of what CUPS (or anything listening on
// its port) answers. A decoded response re-encodes to bytes that decode to the same
// response; no proper prefix of an accepted answer up to its end-of-attributes tag is
// accepted (a truncated answer is never a short success); the accessors the client uses
// never fail on what was decoded.
func FuzzDecodeIPPResponse(f *testing.F) {
	f.Add(response(0, 7, 42, jobCompleted))
	f.Add(response(0x0507, 1, 0, 0))
	req, err := encodeRequest(opPrintJob, 3, []ippAttr{str(tagCharset, "attributes-charset", "utf-8"),
		str(tagKeyword, "requested-attributes", "job-state", "job-state-reasons", "printer-is-accepting-jobs"),
		integer("job-id", 9), {tag: tagBoolean, name: "printer-is-accepting-jobs", values: [][]byte{{1}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(req)
	f.Add(append(response(0, 1, 1, 3), "%PDF-1.7 trailing document"...))
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 1, 0x03})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 1, 0x7F, 0, 0})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 1, 0x21, 0, 0, 0, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResponse(b)
		if err != nil {
			return
		}
		enc := encodeResponse(r)
		back, err := decodeResponse(enc)
		if err != nil || !reflect.DeepEqual(normalise(back), normalise(r)) {
			t.Fatalf("re-encoded response: %v\n%+v\n%+v", err, back, r)
		}
		// The answer ends at its end-of-attributes tag: find it by shortening.
		if len(b) <= 1024 {
			end := len(b)
			for end > 9 {
				if _, err := decodeResponse(b[:end-1]); err != nil {
					break
				}
				end--
			}
			for n := 0; n < end; n++ {
				if _, err := decodeResponse(b[:n]); err == nil {
					t.Fatalf("prefix of %d bytes accepted, the answer ends at %d", n, end)
				}
			}
		}
		_ = r.statusMessage()
		for _, tag := range []byte{tagOperation, tagJob, tagPrinter} {
			g := r.group(tag)
			_, _ = g.int("job-state")
			_, _ = g.bool("printer-is-accepting-jobs")
			_ = g.texts("job-state-reasons")
		}
	})
}

// normalise drops the nil/empty distinction of value data for comparison.
func normalise(r *ippResponse) *ippResponse {
	out := &ippResponse{status: r.status, requestID: r.requestID}
	for _, g := range r.groups {
		ng := ippGroup{tag: g.tag, attrs: map[string][]ippValue{}}
		for n, vs := range g.attrs {
			for _, v := range vs {
				ng.attrs[n] = append(ng.attrs[n], ippValue{tag: v.tag, data: append([]byte{}, v.data...)})
			}
		}
		out.groups = append(out.groups, ng)
	}
	return out
}
