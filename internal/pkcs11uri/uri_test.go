package pkcs11uri

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The examples of RFC 7512 §3 parse, with the values the RFC gives them.
func TestParseRFC7512Examples(t *testing.T) {
	id := []byte{0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91}
	tests := []struct {
		in    string
		check func(*URI) bool
	}{
		{"pkcs11:", func(u *URI) bool { return u.Token == "" && u.Object == "" }},
		{"pkcs11:object=my-pubkey;type=public", func(u *URI) bool { return u.Object == "my-pubkey" && u.Type == "public" }},
		{"pkcs11:object=my-key;type=private?pin-source=file:/etc/token", func(u *URI) bool {
			return u.Object == "my-key" && u.Type == "private" && u.PINSource == "file:/etc/token"
		}},
		{"pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
			nil}, // "serial=" (empty value) is refused below: checked separately
		{"pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91?pin-source=file:/etc/token_pin",
			func(u *URI) bool {
				return u.Token == "The Software PKCS#11 Softtoken" && u.Manufacturer == "Snake Oil, Inc." && u.Model == "1.0" &&
					u.Object == "my-certificate" && u.Type == "cert" && bytes.Equal(u.ID, id) && u.PINSource == "file:/etc/token_pin"
			}},
		{"pkcs11:object=my-sign-key;type=private?module-name=mypkcs11", func(u *URI) bool {
			return u.Object == "my-sign-key" && u.ModuleName == "mypkcs11"
		}},
		{"pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1", func(u *URI) bool {
			return u.ModulePath == "/mnt/libmypkcs11.so.1"
		}},
		{"pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin", func(u *URI) bool {
			return u.Token == "Software PKCS#11 softtoken" && u.PINValue == "the-pin"
		}},
		{"pkcs11:slot-description=Sun%20Metaslot", func(u *URI) bool { return u.SlotDescription == "Sun Metaslot" }},
		{"pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23", func(u *URI) bool {
			return u.LibraryManufacturer == "Snake Oil, Inc." && u.LibraryDescription == "Soft Token Library" &&
				*u.LibraryVersion == Version{1, 23}
		}},
		{"pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ca%fe%04%05%06", func(u *URI) bool {
			return u.Token == "My token% created by Joe" && *u.LibraryVersion == Version{3, 0} &&
				bytes.Equal(u.ID, []byte{1, 2, 3, 0xba, 0xdd, 0xca, 0xfe, 4, 5, 6})
		}},
		{"pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert", func(u *URI) bool {
			return u.Token == "A name with a substring %;"
		}},
		{"pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert", func(u *URI) bool {
			return u.Token == "Name with a small A with acute: á"
		}},
		{"pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b", func(u *URI) bool {
			return u.Token == "my-token" && u.VendorPath["vendor-aaa"] == "value-a" && u.VendorQuery["vendor-bbb"][0] == "value-b" &&
				u.PINSource == "file:/etc/token_pin"
		}},
		{"pkcs11:slot-id=2;token=t", func(u *URI) bool { return u.SlotID != nil && *u.SlotID == 2 }},
	}
	for _, tc := range tests {
		u, err := Parse(tc.in)
		if tc.check == nil {
			if err == nil {
				t.Errorf("Parse(%q) accepted an empty value", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if !tc.check(u) {
			t.Errorf("Parse(%q) = %#v", tc.in, u)
		}
	}
}

// Malformed URIs are refused with ErrSyntax, never read loosely.
func TestParseRefuses(t *testing.T) {
	for _, in := range []string{
		"",
		"PKCS11:token=a",             // the scheme is lower case
		"pkcs11://token=a",           // not hierarchical
		"pkcs11:token=a;token=b",     // path attribute twice
		"pkcs11:Token=a;token=b;x=%", // truncated escape
		"pkcs11:token=a%2",           // truncated escape
		"pkcs11:token=a%zz",          // bad escape
		"pkcs11:token=a b",           // space unencoded
		"pkcs11:token=a/b",           // "/" not allowed in the path
		"pkcs11:token=a#b",           // "#" (fragment) not allowed
		"pkcs11:token",               // no value
		"pkcs11:token=",              // empty value
		"pkcs11:=a",                  // no name
		"pkcs11:tok%65n=a",           // escaped name
		"pkcs11:type=secret",         // unknown type
		"pkcs11:slot-id=0x1",         // slot-id is decimal
		"pkcs11:slot-id=-1",          // slot-id is decimal
		"pkcs11:library-version=1.x", // M or M.m
		"pkcs11:library-version=.1",  // M or M.m
		"pkcs11:token=a?",            // empty query
		"pkcs11:token=a?pin-source=/a&pin-source=/b",  // twice
		"pkcs11:token=a?pin-source=/a&pin-value=1234", // both
		"pkcs11:token=a?module-path=/a b",             // space unencoded
		"pkcs11:token=a;",                             // empty attribute
	} {
		if u, err := Parse(in); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %v, %v; want ErrSyntax", in, u, err)
		}
	}
}

// A pin-value never shows in String or Redacted (log lines use %v/%s).
func TestStringRedactsPIN(t *testing.T) {
	u, err := Parse("pkcs11:token=My%20Token;id=%01%FF?pin-value=s3cret-1234&module-path=/usr/lib/x.so")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{u.String(), u.Redacted()} {
		if strings.Contains(s, "s3cret") {
			t.Fatalf("PIN in %q", s)
		}
	}
	// The redacted form parses back to the same token and module.
	back, err := Parse(u.String())
	if err != nil || back.Token != "My Token" || back.ModulePath != "/usr/lib/x.so" || !bytes.Equal(back.ID, []byte{1, 0xff}) {
		t.Fatalf("round trip of %q: %#v, %v", u.String(), back, err)
	}
}

func TestPINFile(t *testing.T) {
	for src, want := range map[string]string{
		"file:/etc/token_pin":          "/etc/token_pin",
		"file:///etc/token_pin":        "/etc/token_pin",
		"file://localhost/etc/pin":     "/etc/pin",
		"/var/lib/madoguchi/token.pin": "/var/lib/madoguchi/token.pin",
	} {
		if got, err := (&URI{PINSource: src}).PINFile(); err != nil || got != want {
			t.Errorf("PINFile(%q) = %q, %v; want %q", src, got, err, want)
		}
	}
	for _, src := range []string{"", "builtin-dialog", "|/usr/bin/getpin", "file:relative", "file://host/etc/pin", "https://x/pin", "relative/pin"} {
		if got, err := (&URI{PINSource: src}).PINFile(); err == nil {
			t.Errorf("PINFile(%q) = %q, want refusal", src, got)
		}
	}
}
