package jpki

import (
	"encoding/asn1"
	"errors"
	"strings"
	"testing"
)

// TestStandardAttributes: the data file parses, carries J-LIS's OIDs .1-.6 in the layout real
// certificates use (profile 2.2) and Madoguchi's .7-.10 for 旧氏 and 通称, and each call returns
// a fresh map.
func TestStandardAttributes(t *testing.T) {
	a, err := StandardAttributes()
	if err != nil {
		t.Fatal(err)
	}
	arc := func(n int) asn1.ObjectIdentifier {
		return append(append(asn1.ObjectIdentifier{}, PersonalDataArc...), n)
	}
	l, ok := a.Layout()
	want := Layout{Name: arc(1), NamePositions: arc(2), Sex: arc(3), BirthDate: arc(4), Address: arc(5), AddressPositions: arc(6)}
	if !ok || l.check() != nil {
		t.Fatalf("Layout = %+v, %v", l, ok)
	}
	for i, o := range l.Order() {
		if !o.Equal(want.Order()[i]) {
			t.Errorf("layout entry %d = %s, want %s", i, o, want.Order()[i])
		}
	}
	if f := a[AttrFormerSurname]; !f.OID.Equal(arc(7)) || !f.Substitutes.Equal(arc(8)) {
		t.Errorf("formerSurname = %+v", f)
	}
	if f := a[AttrAlias]; !f.OID.Equal(arc(9)) || !f.Substitutes.Equal(arc(10)) {
		t.Errorf("alias = %+v", f)
	}
	delete(a, AttrAlias)
	if b, _ := StandardAttributes(); len(b) != len(AttributeOrder) || a.Equal(b) {
		t.Errorf("StandardAttributes shares its map with callers")
	}
	if _, ok := (Attributes{}).Layout(); ok {
		t.Error("empty Attributes have a layout")
	}
}

// TestParseAttributesRefuses: bad data is refused, not half read.
func TestParseAttributesRefuses(t *testing.T) {
	good := string(attributesJSON)
	for name, data := range map[string]string{
		"unknown field":     strings.Replace(good, `"notes"`, `"note"`, 1),
		"unknown attribute": strings.Replace(good, `"alias"`, `"nickname"`, 1),
		"missing attribute": strings.Replace(good, `"sex":           {"oid": "1.2.392.200149.8.5.5.3"},`, ``, 1),
		"outside the arc":   strings.Replace(good, `"1.2.392.200149.8.5.5.3"`, `"1.2.392.200149.8.5.6.3"`, 1),
		"the arc itself":    strings.Replace(good, `"1.2.392.200149.8.5.5.3"`, `"1.2.392.200149.8.5.5"`, 1),
		"malformed OID":     strings.Replace(good, `"1.2.392.200149.8.5.5.3"`, `"1.2.392.200149.8.5.5.x"`, 1),
		"OID used twice":    strings.Replace(good, `"1.2.392.200149.8.5.5.3"`, `"1.2.392.200149.8.5.5.1"`, 1),
		"no name positions": strings.Replace(good, `, "substitutesOid": "1.2.392.200149.8.5.5.2"`, ``, 1),
		"positions of sex":  strings.Replace(good, `{"oid": "1.2.392.200149.8.5.5.3"}`, `{"oid": "1.2.392.200149.8.5.5.3", "substitutesOid": "1.2.392.200149.8.5.5.11"}`, 1),
	} {
		if data == good {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if a, err := ParseAttributes([]byte(data)); !errors.Is(err, ErrBadAttributes) {
			t.Errorf("%s: ParseAttributes = %v, %v; want ErrBadAttributes", name, a, err)
		}
	}
}

func TestUnderPersonalDataArc(t *testing.T) {
	for o, want := range map[string]bool{"1.2.392.200149.8.5.5.1": true, "1.2.392.200149.8.5.5": false, "1.2.392.200149.8.5.50.1": false, "2.5.29.17": false} {
		var oid asn1.ObjectIdentifier
		for _, p := range strings.Split(o, ".") {
			n := 0
			for _, c := range p {
				n = n*10 + int(c-'0')
			}
			oid = append(oid, n)
		}
		if got := UnderPersonalDataArc(oid); got != want {
			t.Errorf("UnderPersonalDataArc(%s) = %v", o, got)
		}
	}
}
