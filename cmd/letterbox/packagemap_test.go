package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

// TestArchitecturePackageMap holds docs/architecture.md's map of packages to what `go list`
// says: the same packages, each importing exactly the module's packages its line names after
// "imports" (a line without one, or with "imports nothing of ours", names none). A package
// added, removed or given a new dependency fails here until the page says so.
func TestArchitecturePackageMap(t *testing.T) {
	documented := documentedPackages(t, "../../docs/architecture.md")

	cmd := exec.Command("go", "list", "-tags", "sqlite_fts5", "-json=ImportPath,Imports", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/letterbox-mail/letterbox/"
	listed := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		var ours []string
		for _, imp := range p.Imports {
			if rest, ok := strings.CutPrefix(imp, module); ok {
				ours = append(ours, rest)
			}
		}
		slices.Sort(ours)
		listed[strings.TrimPrefix(p.ImportPath, module)] = ours
	}

	for name, imports := range listed {
		doc, ok := documented[name]
		if !ok {
			t.Errorf("%s is not in docs/architecture.md's map of packages", name)
			continue
		}
		if !slices.Equal(doc, imports) {
			t.Errorf("%s: docs/architecture.md says it imports %v; go list says %v", name, doc, imports)
		}
	}
	for name := range documented {
		if _, ok := listed[name]; !ok {
			t.Errorf("docs/architecture.md's map names %s, which go list does not know", name)
		}
	}
}

// documentedPackages reads the first fenced block of the page that starts with cmd/letterbox:
// one package per line, its path first, its imports after the last "; imports ".
func documentedPackages(t *testing.T, file string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "```\ncmd/letterbox ")
	if start < 0 {
		t.Fatal("docs/architecture.md: no map of packages (a fenced block starting with cmd/letterbox)")
	}
	block, _, _ := strings.Cut(text[start+4:], "```")
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		name, desc, _ := strings.Cut(line, " ")
		if path.Clean(name) != name {
			t.Fatalf("docs/architecture.md: %q is not a package path", name)
		}
		imports := []string{}
		if i := strings.LastIndex(desc, "; imports "); i >= 0 {
			list := desc[i+len("; imports "):]
			if list != "nothing of ours" {
				for _, imp := range strings.Split(list, ", ") {
					imports = append(imports, strings.TrimSpace(imp))
				}
			}
		}
		slices.Sort(imports)
		if _, dup := pkgs[name]; dup {
			t.Errorf("docs/architecture.md: %s is in the map twice", name)
		}
		pkgs[name] = imports
	}
	return pkgs
}
