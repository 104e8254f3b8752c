package printout

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"unicode/utf16"
)

// fixToUnicode repairs the ToUnicode character maps that gopdf v0.33.0 writes, and rewrites the
// cross-reference table to match.
//
// Why: gopdf writes a character outside the Basic Multilingual Plane as its bare code point
// ("<20BB7>" for 𠮷) where the PDF specification (ISO 32000-1 §9.10.3) requires UTF-16BE
// ("<D842DFB7>"); text extraction, search and copy-paste then yield U+20BB "₻" for 𠮷, and a
// certificate copy whose name cannot be searched or read aloud is wrong. It also declares the
// code-space range as only the glyph ids used, where Identity-H codes are two bytes
// ("<0000><FFFF>").
//
// The input is gopdf's own output: classic cross-reference table, one section starting at
// object 0, each object "n 0 obj ... endobj", uncompressed ToUnicode streams. Anything else is
// an error, so an upgrade of gopdf that changes its output fails the tests instead of producing
// a broken file.
func fixToUnicode(pdf []byte) ([]byte, error) {
	bad := func(what string) error { return fmt.Errorf("printout: unexpected gopdf output: %s", what) }
	sx := bytes.LastIndex(pdf, []byte("\nstartxref\n"))
	if sx < 0 {
		return nil, bad("no startxref")
	}
	end := bytes.IndexByte(pdf[sx+11:], '\n')
	if end < 0 {
		return nil, bad("startxref")
	}
	xrefAt, err := strconv.Atoi(string(pdf[sx+11 : sx+11+end]))
	if err != nil || xrefAt <= 0 || xrefAt >= sx {
		return nil, bad("startxref offset")
	}
	xref := pdf[xrefAt:]
	var count int
	if _, err := fmt.Sscanf(string(xref[:min(len(xref), 32)]), "xref\n0 %d\n", &count); err != nil || count < 2 {
		return nil, bad("xref header")
	}
	entriesAt := bytes.IndexByte(xref[5:], '\n') + 6
	if entriesAt+20*count > len(xref) {
		return nil, bad("xref entries")
	}
	type object struct{ num, at int }
	objects := make([]object, 0, count-1)
	for i := 1; i < count; i++ {
		e := xref[entriesAt+20*i : entriesAt+20*i+20]
		if e[17] != 'n' {
			return nil, bad("free object in xref")
		}
		at, err := strconv.Atoi(string(e[:10]))
		if err != nil || at <= 0 || at >= xrefAt {
			return nil, bad("xref offset")
		}
		objects = append(objects, object{i, at})
	}
	sort.Slice(objects, func(i, j int) bool { return objects[i].at < objects[j].at })
	trailer := xref[entriesAt+20*count:]
	if !bytes.HasPrefix(trailer, []byte("trailer\n")) {
		return nil, bad("trailer")
	}
	trailer = trailer[:bytes.Index(trailer, []byte("startxref\n"))]

	var out bytes.Buffer
	out.Grow(len(pdf) + 256)
	out.Write(pdf[:objects[0].at])
	offsets := make([]int, count)
	for i, o := range objects {
		next := xrefAt
		if i+1 < len(objects) {
			next = objects[i+1].at
		}
		body := pdf[o.at:next]
		if !bytes.HasPrefix(body, []byte(strconv.Itoa(o.num)+" 0 obj")) {
			return nil, bad("object offset")
		}
		offsets[o.num] = out.Len()
		if bytes.Contains(body, []byte("/CMapName /Adobe-Identity-UCS")) {
			if body, err = fixCMapObject(o.num, body); err != nil {
				return nil, err
			}
		}
		out.Write(body)
	}
	newXref := out.Len()
	fmt.Fprintf(&out, "xref\n0 %d\n0000000000 65535 f \n", count)
	for i := 1; i < count; i++ {
		fmt.Fprintf(&out, "%010d 00000 n \n", offsets[i])
	}
	out.Write(trailer)
	fmt.Fprintf(&out, "startxref\n%d\n%%%%EOF\n", newXref)
	return out.Bytes(), nil
}

var (
	bfrangeLine   = regexp.MustCompile(`(?m)^<([0-9A-F]{4})><([0-9A-F]{4})><([0-9A-F]+)>$`)
	codespaceLine = regexp.MustCompile(`(?m)^1 begincodespacerange\n<[0-9A-F]{4}><[0-9A-F]{4}>\nendcodespacerange$`)
)

// fixCMapObject rewrites one ToUnicode stream object "n 0 obj\n<<\n/Length L\n>>\nstream\n...".
func fixCMapObject(num int, obj []byte) ([]byte, error) {
	bad := fmt.Errorf("printout: unexpected gopdf output: ToUnicode object %d", num)
	head := fmt.Sprintf("%d 0 obj\n<<\n/Length ", num)
	if !bytes.HasPrefix(obj, []byte(head)) {
		return nil, bad
	}
	s := bytes.Index(obj, []byte(">>\nstream\n"))
	e := bytes.LastIndex(obj, []byte("endstream"))
	if s < 0 || e < s {
		return nil, bad
	}
	length, err := strconv.Atoi(string(bytes.TrimSpace(obj[len(head):s])))
	data := obj[s+len(">>\nstream\n") : e]
	if err != nil || length != len(data) {
		return nil, bad
	}
	var convErr error
	data = codespaceLine.ReplaceAll(data, []byte("1 begincodespacerange\n<0000><FFFF>\nendcodespacerange"))
	data = bfrangeLine.ReplaceAllFunc(data, func(line []byte) []byte {
		m := bfrangeLine.FindSubmatch(line)
		cp, err := strconv.ParseUint(string(m[3]), 16, 32)
		if err != nil || cp > 0x10FFFF {
			convErr = bad
			return line
		}
		var dst bytes.Buffer
		fmt.Fprintf(&dst, "<%s><%s><", m[1], m[2])
		for _, unit := range utf16.Encode([]rune{rune(cp)}) {
			fmt.Fprintf(&dst, "%04X", unit)
		}
		dst.WriteByte('>')
		return dst.Bytes()
	})
	if convErr != nil {
		return nil, convErr
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "%s%d\n>>\nstream\n", head, len(data))
	out.Write(data)
	out.Write(obj[e:])
	return out.Bytes(), nil
}
