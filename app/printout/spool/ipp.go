package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The small part of IPP/1.1 (RFC 8010 encoding, RFC 8011 semantics) this client speaks.

// Operation ids (RFC 8011 §5.4.15).
const (
	opPrintJob             uint16 = 0x0002
	opCancelJob            uint16 = 0x0008
	opGetJobAttributes     uint16 = 0x0009
	opGetPrinterAttributes uint16 = 0x000B
)

// Delimiter tags (RFC 8010 §3.5.1).
const (
	tagOperation byte = 0x01
	tagJob       byte = 0x02
	tagEnd       byte = 0x03
	tagPrinter   byte = 0x04
)

// Value tags (RFC 8010 §3.5.2).
const (
	tagInteger  byte = 0x21
	tagBoolean  byte = 0x22
	tagEnum     byte = 0x23
	tagName     byte = 0x42
	tagKeyword  byte = 0x44
	tagURI      byte = 0x45
	tagCharset  byte = 0x47
	tagLanguage byte = 0x48
	tagMIMEType byte = 0x49
)

// Status codes this client tells apart (RFC 8011 §B.1); any other error status is ErrRefused.
const (
	statusOKMax        uint16 = 0x00FF // successful-ok-*
	statusNotFound     uint16 = 0x0406 // client-error-not-found
	statusNotAccepting uint16 = 0x0506 // server-error-not-accepting-jobs
)

// Job states (RFC 8011 §5.3.7).
const (
	jobPending           = 3
	jobPendingHeld       = 4
	jobProcessing        = 5
	jobProcessingStopped = 6
	jobCanceled          = 7
	jobAborted           = 8
	jobCompleted         = 9
)

// printerStopped is printer-state "stopped" (RFC 8011 §5.4.11; 3 idle, 4 processing).
const printerStopped = 5

// jobStateName is the RFC keyword of a job-state value, for messages.
func jobStateName(s int) string {
	switch s {
	case jobPending:
		return "pending"
	case jobPendingHeld:
		return "pending-held"
	case jobProcessing:
		return "processing"
	case jobProcessingStopped:
		return "processing-stopped"
	case jobCanceled:
		return "canceled"
	case jobAborted:
		return "aborted"
	case jobCompleted:
		return "completed"
	}
	return fmt.Sprintf("state %d", s)
}

// ippAttr is one attribute of a request: its value tag, name and values (several values make a
// multi-valued attribute, encoded with empty names after the first).
type ippAttr struct {
	tag    byte
	name   string
	values [][]byte
}

func str(tag byte, name string, values ...string) ippAttr {
	a := ippAttr{tag: tag, name: name}
	for _, v := range values {
		a.values = append(a.values, []byte(v))
	}
	return a
}

func integer(name string, v int32) ippAttr {
	return ippAttr{tag: tagInteger, name: name, values: [][]byte{binary.BigEndian.AppendUint32(nil, uint32(v))}}
}

// encodeRequest returns an IPP/1.1 request: header, one operation-attributes group, the
// end-of-attributes tag. The document data, if any, follows it on the wire.
func encodeRequest(op uint16, requestID uint32, attrs []ippAttr) ([]byte, error) {
	var b bytes.Buffer
	b.Write([]byte{1, 1})
	b.Write(binary.BigEndian.AppendUint16(nil, op))
	b.Write(binary.BigEndian.AppendUint32(nil, requestID))
	b.WriteByte(tagOperation)
	for _, a := range attrs {
		if len(a.name) > 0x7FFF || len(a.values) == 0 {
			return nil, fmt.Errorf("spool: ipp attribute %q is malformed", a.name)
		}
		for i, v := range a.values {
			if len(v) > 0x7FFF {
				return nil, fmt.Errorf("spool: ipp attribute %q is too long", a.name)
			}
			name := a.name
			if i > 0 {
				name = ""
			}
			b.WriteByte(a.tag)
			b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(name))))
			b.WriteString(name)
			b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(v))))
			b.Write(v)
		}
	}
	b.WriteByte(tagEnd)
	return b.Bytes(), nil
}

// ippValue is one value of a response attribute.
type ippValue struct {
	tag  byte
	data []byte
}

// ippGroup is one attribute group of a response, by attribute name. Values of collection
// members (CUPS sends some in printer attributes) land under the collection's name; this client
// never reads those.
type ippGroup struct {
	tag   byte
	attrs map[string][]ippValue
}

// ippResponse is a decoded IPP response.
type ippResponse struct {
	status    uint16
	requestID uint32
	groups    []ippGroup
}

var errShortIPP = errors.New("spool: ipp response truncated")

// decodeResponse parses an IPP response (any trailing data after end-of-attributes is ignored).
func decodeResponse(b []byte) (*ippResponse, error) {
	if len(b) < 9 {
		return nil, errShortIPP
	}
	if b[0] < 1 || b[0] > 2 {
		return nil, fmt.Errorf("spool: ipp response version %d.%d is not supported", b[0], b[1])
	}
	r := &ippResponse{status: binary.BigEndian.Uint16(b[2:4]), requestID: binary.BigEndian.Uint32(b[4:8])}
	p := 8
	var cur *ippGroup
	var last string
	for {
		if p >= len(b) {
			return nil, errShortIPP
		}
		tag := b[p]
		p++
		if tag == tagEnd {
			return r, nil
		}
		if tag < 0x10 { // a delimiter: a new group
			r.groups = append(r.groups, ippGroup{tag: tag, attrs: map[string][]ippValue{}})
			cur = &r.groups[len(r.groups)-1]
			last = ""
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("spool: ipp response has a value (tag 0x%02x) outside any group", tag)
		}
		if tag == 0x7F { // extension: a 4-byte tag follows in the name-length position (RFC 8010 §3.5.2)
			return nil, fmt.Errorf("spool: ipp response uses an extension tag")
		}
		if p+2 > len(b) {
			return nil, errShortIPP
		}
		nl := int(binary.BigEndian.Uint16(b[p:]))
		p += 2
		if p+nl+2 > len(b) {
			return nil, errShortIPP
		}
		name := string(b[p : p+nl])
		p += nl
		vl := int(binary.BigEndian.Uint16(b[p:]))
		p += 2
		if p+vl > len(b) {
			return nil, errShortIPP
		}
		v := ippValue{tag: tag, data: b[p : p+vl]}
		p += vl
		if nl > 0 {
			last = name
		}
		cur.attrs[last] = append(cur.attrs[last], v)
	}
}

// group returns the first group with the tag, or nil.
func (r *ippResponse) group(tag byte) *ippGroup {
	for i := range r.groups {
		if r.groups[i].tag == tag {
			return &r.groups[i]
		}
	}
	return nil
}

// statusMessage is the operation group's status-message, or "".
func (r *ippResponse) statusMessage() string {
	if g := r.group(tagOperation); g != nil {
		return g.text("status-message")
	}
	return ""
}

// int returns the first value of an integer or enum attribute; ok is false when it is absent.
func (g *ippGroup) int(name string) (int, bool) {
	if g == nil {
		return 0, false
	}
	vs := g.attrs[name]
	if len(vs) == 0 || (vs[0].tag != tagInteger && vs[0].tag != tagEnum) || len(vs[0].data) != 4 {
		return 0, false
	}
	return int(int32(binary.BigEndian.Uint32(vs[0].data))), true
}

// bool returns the first value of a boolean attribute; ok is false when it is absent.
func (g *ippGroup) bool(name string) (value, ok bool) {
	if g == nil {
		return false, false
	}
	vs := g.attrs[name]
	if len(vs) == 0 || vs[0].tag != tagBoolean || len(vs[0].data) != 1 {
		return false, false
	}
	return vs[0].data[0] != 0, true
}

// text returns the first value of a string attribute, or "".
func (g *ippGroup) text(name string) string {
	if g == nil {
		return ""
	}
	vs := g.attrs[name]
	if len(vs) == 0 {
		return ""
	}
	return string(vs[0].data)
}

// texts returns every value of a string attribute.
func (g *ippGroup) texts(name string) []string {
	if g == nil {
		return nil
	}
	var out []string
	for _, v := range g.attrs[name] {
		out = append(out, string(v.data))
	}
	return out
}

// readLimited reads at most max bytes of r and fails if there is more.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("spool: ipp response over %d bytes", max)
	}
	return b, nil
}
