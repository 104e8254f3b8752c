// Package pkcs11uri parses RFC 7512 PKCS #11 URIs ("pkcs11:token=…;object=…?pin-source=…"),
// which name the token that holds the terminal's keys (app/termkey).
//
// The parser is strict where a loose reading could pick the wrong token or leak a PIN:
//   - only the characters RFC 7512's ABNF allows appear unencoded (path values: unreserved and
//     ":[]@!$'()*+,=&"; query values add "/?|"); everything else must be percent-encoded, and a
//     bad escape ("%4", "%zz") is refused;
//   - attribute names are case sensitive, and a path attribute may appear only once (RFC 7512
//     §2.3); a standard query attribute only once as well;
//   - values are percent-decoded; id is raw bytes, library-version is "M" or "M.m";
//   - attributes RFC 7512 does not define (vendor-specific, pk11-v-attr-nm) are kept in
//     VendorPath / VendorQuery. RFC 7512's matching rules (§2.4): a path attribute the consumer
//     does not know makes the URI match nothing, so a consumer refuses a URI with VendorPath
//     entries; a query attribute it does not know is ignored.
//
// String never prints pin-value (Redacted is what logs get).
package pkcs11uri

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// ErrSyntax is the class of every parse error.
var ErrSyntax = errors.New("pkcs11uri: invalid PKCS #11 URI")

// Version is a library version, "M" or "M.m" (RFC 7512 §2.3 library-version).
type Version struct{ Major, Minor int }

// URI is a parsed PKCS #11 URI. Empty strings mean "not given" (a value given as empty, e.g.
// "token=", is refused: it would match nothing useful).
type URI struct {
	// Path attributes: the library, slot, token and object.
	LibraryManufacturer, LibraryDescription string
	LibraryVersion                          *Version
	SlotDescription, SlotManufacturer       string
	SlotID                                  *uint64
	Token, Manufacturer, Serial, Model      string
	Object                                  string
	Type                                    string // public, private, cert, secret-key, data
	ID                                      []byte
	// Query attributes: how to reach the module and the PIN.
	PINSource, PINValue    string
	ModuleName, ModulePath string
	// Attributes RFC 7512 does not define, by name (decoded values).
	VendorPath  map[string]string
	VendorQuery map[string][]string
}

// objectTypes are the values of "type" (RFC 7512 §2.3).
var objectTypes = map[string]bool{"public": true, "private": true, "cert": true, "secret-key": true, "data": true}

const (
	unreservedSet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
	resAvail      = ":[]@!$'()*+,="
	pathChars     = unreservedSet + resAvail + "&"
	queryChars    = unreservedSet + resAvail + "/?|"
	nameChars     = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
)

// Parse parses s strictly (see the package comment).
func Parse(s string) (*URI, error) {
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return nil, fmt.Errorf("%w: scheme must be pkcs11:", ErrSyntax)
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	u := &URI{}
	if path != "" {
		seen := map[string]bool{}
		for _, attr := range strings.Split(path, ";") {
			name, val, err := splitAttr(attr, pathChars, "path")
			if err != nil {
				return nil, err
			}
			if seen[name] {
				return nil, fmt.Errorf("%w: path attribute %q given twice", ErrSyntax, name)
			}
			seen[name] = true
			if err := u.setPath(name, val); err != nil {
				return nil, err
			}
		}
	}
	if hasQuery {
		if query == "" {
			return nil, fmt.Errorf("%w: empty query", ErrSyntax)
		}
		seen := map[string]bool{}
		for _, attr := range strings.Split(query, "&") {
			name, val, err := splitAttr(attr, queryChars, "query")
			if err != nil {
				return nil, err
			}
			switch name {
			case "pin-source", "pin-value", "module-name", "module-path":
				if seen[name] {
					return nil, fmt.Errorf("%w: query attribute %q given twice", ErrSyntax, name)
				}
				seen[name] = true
			}
			u.setQuery(name, val)
		}
		if u.PINSource != "" && u.PINValue != "" {
			return nil, fmt.Errorf("%w: both pin-source and pin-value", ErrSyntax)
		}
	}
	return u, nil
}

// splitAttr splits "name=value", checks the characters and percent-decodes the value.
func splitAttr(attr, allowed, where string) (string, string, error) {
	name, raw, ok := strings.Cut(attr, "=")
	if !ok || name == "" {
		return "", "", fmt.Errorf("%w: %s attribute %q is not name=value", ErrSyntax, where, attr)
	}
	for _, c := range name {
		if !strings.ContainsRune(nameChars, c) {
			return "", "", fmt.Errorf("%w: %s attribute name %q", ErrSyntax, where, name)
		}
	}
	if raw == "" {
		return "", "", fmt.Errorf("%w: %s attribute %q has an empty value", ErrSyntax, where, name)
	}
	val, err := decode(raw, allowed)
	if err != nil {
		return "", "", fmt.Errorf("%w: %s attribute %q: %v", ErrSyntax, where, name, err)
	}
	return name, val, nil
}

// decode percent-decodes s, refusing characters outside allowed and bad escapes.
func decode(s, allowed string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) {
				return "", fmt.Errorf("truncated escape at offset %d", i)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("bad escape %q", s[i:i+3])
			}
			b.WriteByte(byte(v))
			i += 2
		case strings.IndexByte(allowed, c) >= 0:
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("character %q must be percent-encoded", c)
		}
	}
	return b.String(), nil
}

func (u *URI) setPath(name, val string) error {
	switch name {
	case "token":
		u.Token = val
	case "manufacturer":
		u.Manufacturer = val
	case "serial":
		u.Serial = val
	case "model":
		u.Model = val
	case "library-manufacturer":
		u.LibraryManufacturer = val
	case "library-description":
		u.LibraryDescription = val
	case "library-version":
		v, err := parseVersion(val)
		if err != nil {
			return err
		}
		u.LibraryVersion = v
	case "slot-description":
		u.SlotDescription = val
	case "slot-manufacturer":
		u.SlotManufacturer = val
	case "slot-id":
		// RFC 7512 §2.3: a decimal CK_SLOT_ID.
		for _, c := range val {
			if c < '0' || c > '9' {
				return fmt.Errorf("%w: slot-id %q is not a decimal number", ErrSyntax, val)
			}
		}
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: slot-id %q", ErrSyntax, val)
		}
		u.SlotID = &n
	case "object":
		u.Object = val
	case "type":
		if !objectTypes[val] {
			return fmt.Errorf("%w: type %q is not public, private, cert, secret-key or data", ErrSyntax, val)
		}
		u.Type = val
	case "id":
		u.ID = []byte(val)
	default:
		if u.VendorPath == nil {
			u.VendorPath = map[string]string{}
		}
		u.VendorPath[name] = val
	}
	return nil
}

func (u *URI) setQuery(name, val string) {
	switch name {
	case "pin-source":
		u.PINSource = val
	case "pin-value":
		u.PINValue = val
	case "module-name":
		u.ModuleName = val
	case "module-path":
		u.ModulePath = val
	default:
		if u.VendorQuery == nil {
			u.VendorQuery = map[string][]string{}
		}
		u.VendorQuery[name] = append(u.VendorQuery[name], val)
	}
}

func parseVersion(s string) (*Version, error) {
	maj, min, hasMin := strings.Cut(s, ".")
	atoi := func(x string) (int, error) {
		if x == "" || strings.Trim(x, "0123456789") != "" {
			return 0, fmt.Errorf("%w: library-version %q must be M or M.m", ErrSyntax, s)
		}
		return strconv.Atoi(x)
	}
	v := &Version{}
	var err error
	if v.Major, err = atoi(maj); err != nil {
		return nil, err
	}
	if hasMin {
		if v.Minor, err = atoi(min); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// PINFile returns the file named by pin-source: a "file:" URI (file:/p, file:///p) or an
// absolute path. Other sources (a dialog, a command) are refused: the terminal starts
// unattended, and running a command named in a settings file is a way in.
func (u *URI) PINFile() (string, error) {
	src := u.PINSource
	if src == "" {
		return "", errors.New("pkcs11uri: no pin-source")
	}
	if strings.HasPrefix(src, "/") {
		return src, nil
	}
	p, err := url.Parse(src)
	if err != nil || p.Scheme != "file" || (p.Host != "" && p.Host != "localhost") || !strings.HasPrefix(p.Path, "/") || p.RawQuery != "" {
		return "", fmt.Errorf("pkcs11uri: pin-source must be a file: URI or an absolute path")
	}
	return p.Path, nil
}

// Redacted is the URI for logs: every attribute, pin-value replaced by "REDACTED".
func (u *URI) Redacted() string { return u.format(true) }

// String is Redacted: a PIN never reaches a log line through %v.
func (u *URI) String() string { return u.format(true) }

func (u *URI) format(redact bool) string {
	var path, query []string
	add := func(list *[]string, name, val, allowed string) {
		if val != "" {
			*list = append(*list, name+"="+encode(val, allowed))
		}
	}
	add(&path, "library-manufacturer", u.LibraryManufacturer, pathChars)
	add(&path, "library-description", u.LibraryDescription, pathChars)
	if u.LibraryVersion != nil {
		add(&path, "library-version", fmt.Sprintf("%d.%d", u.LibraryVersion.Major, u.LibraryVersion.Minor), pathChars)
	}
	add(&path, "slot-description", u.SlotDescription, pathChars)
	add(&path, "slot-manufacturer", u.SlotManufacturer, pathChars)
	if u.SlotID != nil {
		add(&path, "slot-id", strconv.FormatUint(*u.SlotID, 10), pathChars)
	}
	add(&path, "token", u.Token, pathChars)
	add(&path, "manufacturer", u.Manufacturer, pathChars)
	add(&path, "serial", u.Serial, pathChars)
	add(&path, "model", u.Model, pathChars)
	add(&path, "object", u.Object, pathChars)
	add(&path, "type", u.Type, pathChars)
	if len(u.ID) > 0 {
		var b strings.Builder
		for _, c := range u.ID {
			fmt.Fprintf(&b, "%%%02X", c)
		}
		path = append(path, "id="+b.String())
	}
	for _, k := range sortedKeys(u.VendorPath) {
		add(&path, k, u.VendorPath[k], pathChars)
	}
	add(&query, "pin-source", u.PINSource, queryChars)
	if u.PINValue != "" {
		if redact {
			query = append(query, "pin-value=REDACTED")
		} else {
			add(&query, "pin-value", u.PINValue, queryChars)
		}
	}
	add(&query, "module-name", u.ModuleName, queryChars)
	add(&query, "module-path", u.ModulePath, queryChars)
	for _, k := range sortedKeys(u.VendorQuery) {
		for _, v := range u.VendorQuery[k] {
			add(&query, k, v, queryChars)
		}
	}
	s := "pkcs11:" + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

func encode(s, allowed string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; strings.IndexByte(allowed, c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
