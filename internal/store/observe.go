package store

import (
	"strings"
	"sync/atomic"
	"time"
)

// observer holds the function that ObserveWrites installed, if any.
type observer struct {
	f atomic.Pointer[func(op string, d time.Duration)]
}

// ObserveWrites makes the store report how long every write took, from the call until it
// returned: the wait for the writer, its share of the transaction and the commit (failed
// writes too), to f, with a short operation name ("deliver", "set flags",
// "expunge", "copy", "move", "create account", ...: a small fixed set, never an address).
// f must be fast and safe for concurrent use; nil stops the reports. It is how metrics see
// the store without the store knowing about them.
func (s *Store) ObserveWrites(f func(op string, d time.Duration)) {
	if f == nil {
		s.observe.f.Store(nil)
		return
	}
	s.observe.f.Store(&f)
}

func (o *observer) done(op string, start time.Time) {
	if f := o.f.Load(); f != nil {
		(*f)(opName(op), time.Since(start))
	}
}

// opName cuts what names an account or a mailbox out of a write's description, leaving a
// small fixed set of names: "set quota for a@b" -> "set quota", "create account a@b" ->
// "create account", `rename mailbox "x" to "y"` -> "rename mailbox".
func opName(op string) string {
	var words []string
	for _, w := range strings.Fields(op) {
		if w == "for" || strings.IndexFunc(w, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
			break
		}
		words = append(words, w)
		if w == "account" || w == "mailbox" {
			break
		}
	}
	return strings.Join(words, " ")
}
