// Package depcheck holds the binaries' boundary rules (rules.txt: which packages each build may
// and must link, issue 16) and checks them with `go list`. scripts/deps-check.sh reads the same
// file; this package's test runs the check so that `go test ./...` alone catches a terminal
// that links the CA's internals, a CA that links the terminal, or a production build that links
// the demo's service supervisor.
//
// Imports: the standard library only.
package depcheck

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// RulesText is rules.txt, embedded.
//
//go:embed rules.txt
var RulesText string

// Relation is what a rule requires of a build.
type Relation string

// Relations of rules.txt.
const (
	LinksNot   Relation = "links-not"   // no package of the build is Path or under it
	Links      Relation = "links"       // some package of the build is Path or under it
	ImportsNot Relation = "imports-not" // no direct import of Packages is Path or under it
)

// Rule is one line of rules.txt.
type Rule struct {
	// Pending rules describe a boundary the code does not keep yet; they are reported, not
	// enforced (MADOGUCHI_DEPS_PENDING=1 enforces them).
	Pending  bool
	Name     string
	Tags     string   // build tags; "" for the default build
	Packages []string // package patterns, relative to the module root
	Relation Relation
	Path     string
}

func (r Rule) String() string {
	tags := ""
	if r.Tags != "" {
		tags = " -tags " + r.Tags
	}
	return fmt.Sprintf("%s (%s%s %s %s)", r.Name, strings.Join(r.Packages, ","), tags, r.Relation, r.Path)
}

// ParseRules parses rules.txt; it refuses unknown states and relations.
func ParseRules(text string) ([]Rule, error) {
	var out []Rule
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 6 {
			return nil, fmt.Errorf("rules.txt:%d: %d fields, want 6", n, len(f))
		}
		r := Rule{Name: f[1], Packages: strings.Split(f[3], ","), Relation: Relation(f[4]), Path: f[5]}
		switch f[0] {
		case "on":
		case "pending":
			r.Pending = true
		default:
			return nil, fmt.Errorf("rules.txt:%d: unknown state %q", n, f[0])
		}
		if f[2] != "-" {
			r.Tags = f[2]
		}
		switch r.Relation {
		case LinksNot, Links, ImportsNot:
		default:
			return nil, fmt.Errorf("rules.txt:%d: unknown relation %q", n, f[4])
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// Under reports whether pkg is path or a package below it: madoguchi/app covers
// madoguchi/app/issue, not madoguchi/apple.
func Under(path, pkg string) bool { return pkg == path || strings.HasPrefix(pkg, path+"/") }

// Graph maps each package of a build to its direct imports.
type Graph map[string][]string

// Violations returns what breaks r in g (for Links: nil when the build links Path, else one
// line saying it does not). g must be the build's dependency graph for Links and LinksNot
// (go list -deps) and the packages themselves for ImportsNot.
func (r Rule) Violations(g Graph) []string {
	var found []string
	for pkg, imports := range g {
		if r.Relation == ImportsNot {
			for _, imp := range imports {
				if Under(r.Path, imp) {
					found = append(found, pkg+" imports "+imp)
				}
			}
			continue
		}
		if Under(r.Path, pkg) {
			var by []string
			for p, imps := range g {
				for _, imp := range imps {
					if imp == pkg {
						by = append(by, p)
					}
				}
			}
			slices.Sort(by)
			found = append(found, fmt.Sprintf("%s (imported by %s)", pkg, strings.Join(by, ",")))
		}
	}
	if r.Relation == Links {
		if len(found) > 0 {
			return nil
		}
		return []string{"no package " + r.Path + " in the build"}
	}
	return found
}

// List runs `go list` for r in the module root dir with the go command goTool and returns the
// graph r is checked against.
func List(goTool, dir string, r Rule) (Graph, error) {
	args := []string{"list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}"}
	if r.Relation != ImportsNot {
		args = append(args, "-deps")
	}
	if r.Tags != "" {
		args = append(args, "-tags", r.Tags)
	}
	args = append(args, r.Packages...)
	cmd := exec.Command(goTool, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	g := Graph{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 0 {
			g[f[0]] = f[1:]
		}
	}
	return g, nil
}
