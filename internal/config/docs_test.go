package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// docRow is one row of a settings table of docs/configuration.md.
type docRow struct {
	line             int
	key              string
	flag, def        string
	hasFlagColumn    bool
	hasDefaultColumn bool
}

// documentedSettings reads the settings tables of docs/configuration.md: every Markdown
// table whose header starts with "key".
func documentedSettings(t *testing.T, text string) []docRow {
	t.Helper()
	var rows []docRow
	var cols map[string]int
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			cols = nil
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		switch {
		case cells[0] == "key":
			cols = map[string]int{}
			for j, c := range cells {
				cols[c] = j
			}
			continue
		case cols == nil || strings.HasPrefix(cells[0], "---"):
			continue
		}
		key, ok := strings.CutPrefix(cells[0], "`")
		key, ok2 := strings.CutSuffix(key, "`")
		if !ok || !ok2 || strings.Contains(key, "`") {
			t.Errorf("docs/configuration.md:%d: the key cell %q is not one `key`", i+1, cells[0])
			continue
		}
		r := docRow{line: i + 1, key: key}
		if j, ok := cols["flag"]; ok {
			r.hasFlagColumn, r.flag = true, cells[j]
		}
		if j, ok := cols["default"]; ok {
			r.hasDefaultColumn, r.def = true, cells[j]
		}
		rows = append(rows, r)
	}
	return rows
}

// documentedDefault is how docs/configuration.md writes a setting's default.
func documentedDefault(s setting) string {
	if s.docDefault != "" {
		return s.docDefault
	}
	switch d := s.def.(type) {
	case string:
		if d == "" {
			return "empty"
		}
	case []string:
		if len(d) == 0 {
			return "`[]`"
		}
	}
	return "`" + fmt.Sprint(s.def) + "`"
}

// TestDocumentedSettings checks docs/configuration.md against the settings table: every
// setting has one row, with its flag (or none) and its default, no row names a key that is
// no setting, and every LETTERBOX_* variable the page names is a setting's (EnvVar) or
// LETTERBOX_CONFIG, as the page's own examples of the naming rule are.
func TestDocumentedSettings(t *testing.T) {
	raw, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	byKey := map[string]setting{}
	for _, s := range settings {
		byKey[s.key] = s
	}
	seen := map[string]int{}
	for _, r := range documentedSettings(t, text) {
		s, ok := byKey[r.key]
		if !ok {
			t.Errorf("docs/configuration.md:%d: %q is no setting (closest: %q)", r.line, r.key, closest(r.key, Keys()))
			continue
		}
		if prev, dup := seen[r.key]; dup {
			t.Errorf("docs/configuration.md:%d: %s is documented twice (line %d)", r.line, r.key, prev)
		}
		seen[r.key] = r.line
		wantFlag := ""
		if s.flag != "" {
			wantFlag = "`--" + s.flag + "`"
		}
		switch {
		case r.hasFlagColumn && r.flag != wantFlag:
			t.Errorf("docs/configuration.md:%d: %s has flag %q, the code %q", r.line, r.key, r.flag, wantFlag)
		case !r.hasFlagColumn && s.flag != "":
			t.Errorf("docs/configuration.md:%d: %s has flag --%s, but its table has no flag column", r.line, r.key, s.flag)
		}
		if !r.hasDefaultColumn {
			t.Errorf("docs/configuration.md:%d: %s: its table has no default column", r.line, r.key)
		} else if want := documentedDefault(s); r.def != want {
			t.Errorf("docs/configuration.md:%d: %s has default %q, the code %q", r.line, r.key, r.def, want)
		}
	}
	for _, s := range settings {
		if _, ok := seen[s.key]; !ok {
			t.Errorf("docs/configuration.md: setting %s (%s) is not documented", s.key, EnvVar(s.key))
		}
	}

	known := map[string]bool{configEnv: true}
	for _, s := range settings {
		known[EnvVar(s.key)] = true
	}
	for _, name := range regexp.MustCompile(`LETTERBOX_[A-Z0-9_]*[A-Z0-9]`).FindAllString(text, -1) {
		if !known[name] && !isNotSetting(name) && !isNotSetting(name+"_") { // "LETTERBOX_TEST_*"
			t.Errorf("docs/configuration.md names %s, which is no setting's variable", name)
		}
	}
	// The naming rule's examples: "`imap.addr` is `LETTERBOX_IMAP_ADDR`".
	examples := regexp.MustCompile("`([a-z0-9_.]+)` is `(LETTERBOX_[A-Z0-9_]+)`").FindAllStringSubmatch(text, -1)
	if len(examples) == 0 {
		t.Error("docs/configuration.md gives no example of the environment variables' names")
	}
	for _, m := range examples {
		if EnvVar(m[1]) != m[2] {
			t.Errorf("docs/configuration.md: %s is said to be %s, the code reads %s", m[1], m[2], EnvVar(m[1]))
		}
	}
}
