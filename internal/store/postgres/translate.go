package postgres

import (
	"regexp"
	"strings"
	"sync"
)

// The store's SQL is written once, in the dialect SQLite and PostgreSQL mostly share.
// translate turns the few constructs that differ into PostgreSQL's, mechanically:
//
//   - `?` placeholders become `$1`, `$2`, ... in order (outside string literals, quoted
//     identifiers and comments);
//   - `INSERT OR IGNORE INTO t ...` becomes `INSERT INTO t ... ON CONFLICT DO NOTHING`;
//   - `INSERT OR REPLACE INTO t (c, ...) ...` becomes an upsert on t's primary key
//     (primaryKeys) that sets every listed column from EXCLUDED;
//   - SQLite's scalar `max(a, b, ...)` and `min(a, b, ...)` (two or more arguments; the
//     one-argument forms are aggregates in both) become `greatest` and `least`;
//   - SQLite's `NOT INDEXED` planner hint is dropped.
//
// Anything else passes through unchanged, so the store must keep to SQL both engines
// accept (docs/architecture.md, "Two backends").

// translated is a query as PostgreSQL runs it, and for an INSERT into a table with a
// generated key, the key column LastInsertId reads back (through RETURNING).
type translated struct {
	query     string
	returning string
}

var cache sync.Map // SQLite-flavoured query -> translated

func translate(q string) translated {
	if t, ok := cache.Load(q); ok {
		return t.(translated)
	}
	t := translateUncached(q)
	cache.Store(q, t)
	return t
}

var (
	insertOr   = regexp.MustCompile(`(?is)^\s*INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO\s+([A-Za-z_][A-Za-z0-9_]*)\s*(\(([^)]*)\))?`)
	insertInto = regexp.MustCompile(`(?is)^\s*INSERT\s+INTO\s+([A-Za-z_][A-Za-z0-9_]*)`)
	returning  = regexp.MustCompile(`(?is)\bRETURNING\b`)
	notIndexed = regexp.MustCompile(`(?i)\s+NOT\s+INDEXED\b`)
)

func translateUncached(q string) translated {
	var conflict string
	if m := insertOr.FindStringSubmatchIndex(q); m != nil {
		verb := strings.ToUpper(q[m[2]:m[3]])
		table := q[m[4]:m[5]]
		if verb == "IGNORE" {
			conflict = " ON CONFLICT DO NOTHING"
		} else {
			var cols []string
			if m[8] >= 0 {
				for _, c := range strings.Split(q[m[8]:m[9]], ",") {
					cols = append(cols, strings.TrimSpace(c))
				}
			}
			key := primaryKeys[table]
			var sets []string
			for _, c := range cols {
				if c != key {
					sets = append(sets, c+" = EXCLUDED."+c)
				}
			}
			if key == "" || len(sets) == 0 {
				conflict = " ON CONFLICT DO NOTHING"
			} else {
				conflict = " ON CONFLICT (" + key + ") DO UPDATE SET " + strings.Join(sets, ", ")
			}
		}
		// Drop "OR IGNORE" / "OR REPLACE": keep "INSERT" and everything from "INTO" on.
		into := strings.Index(strings.ToUpper(q[m[0]:m[1]]), "INTO")
		q = q[:m[0]] + "INSERT " + q[m[0]+into:]
	}
	q = notIndexed.ReplaceAllString(q, "")
	q = rewrite(q)
	if conflict != "" {
		if loc := returning.FindStringIndex(q); loc != nil {
			q = q[:loc[0]] + strings.TrimSpace(conflict) + " " + q[loc[0]:]
		} else {
			q = strings.TrimRight(q, " \t\r\n;") + conflict
		}
	}
	t := translated{query: q}
	if m := insertInto.FindStringSubmatch(q); m != nil && !returning.MatchString(q) {
		t.returning = generatedKeys[m[1]]
	}
	return t
}

// rewrite numbers the placeholders and renames scalar max/min, skipping literals,
// quoted identifiers and comments.
func rewrite(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // '' inside a literal
						j += 2
						continue
					}
					break
				}
				j++
			}
			end := min(j+1, len(q))
			b.WriteString(q[i:end])
			i = end - 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j])
			i += j - 1
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(itoa(n))
		case (c == 'm' || c == 'M') && i+3 < len(q) && wordStart(q, i):
			name := strings.ToLower(q[i : i+3])
			j := i + 3
			for j < len(q) && (q[j] == ' ' || q[j] == '\t') {
				j++
			}
			if (name == "max" || name == "min") && j < len(q) && q[j] == '(' && hasTopLevelComma(q[j:]) {
				if name == "max" {
					b.WriteString("greatest")
				} else {
					b.WriteString("least")
				}
				i += 2
				continue
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func wordStart(q string, i int) bool {
	if i == 0 {
		return true
	}
	p := q[i-1]
	return !(p == '_' || p == '.' || p >= '0' && p <= '9' || p >= 'a' && p <= 'z' || p >= 'A' && p <= 'Z')
}

// hasTopLevelComma reports whether the parenthesised list at the start of s has a comma
// at its own level: max(a, b) does, max(a) and max(f(a, b)) do not.
func hasTopLevelComma(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return false
			}
		case ',':
			if depth == 1 {
				return true
			}
		case '\'':
			for i++; i < len(s) && s[i] != '\''; i++ {
			}
		}
	}
	return false
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
