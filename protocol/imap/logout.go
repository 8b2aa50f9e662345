package imap

import (
	"net"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"github.com/letterbox-mail/letterbox/pkg/metrics"
)

// sessionStats are a session's counters for its logout line (as Dovecot's
// imap_logout_format). The counters are kept by the commands themselves, under the
// session mutex; commands counts what counted reports.
type sessionStats struct {
	start    time.Time
	netConn  net.Conn // as accepted, beneath any STARTTLS: what metrics.Transferred reads
	commands int
	fetched  int // messages sent with a body section (BODY[...], BINARY[...], RFC822...)
	appended int
	expunged int // removed by EXPUNGE, UID EXPUNGE, CLOSE and MOVE
}

// counted is what imapserver holds as the session: the session itself, with the methods
// that imapserver calls once per command wrapped to count that command (in the logout
// line and letterbox_commands_total). Every other method, including any interface the
// session implements, is the session's own (promoted).
//
// imapserver has no per-command hook, so commands are named from the backend call they
// make: CAPABILITY, NOOP, CHECK, LOGOUT, STARTTLS, ENABLE and commands imapserver refuses
// itself (unknown, wrong state, bad syntax) call no backend method and are not counted;
// LSUB counts as list. CLOSE calls Expunge with a writer that writes nothing and then
// Unselect; SELECT in the selected state calls Unselect first: an Unselect is therefore
// counted only when the call after it is not a Select.
type counted struct {
	*session
	unselectPending bool // Unselect ran; counted as UNSELECT unless Select follows
	closed          bool // the Expunge of a CLOSE ran; its Unselect is part of it
}

func (c *counted) count(name string) {
	if c.unselectPending {
		c.unselectPending = false
		c.tally("unselect")
	}
	c.closed = false
	c.tally(name)
}

func (c *counted) tally(name string) {
	c.stats.commands++
	c.srv.opts.Metrics.Command(metrics.IMAP, name)
}

// uidPrefix names the UID form of a command when numSet holds UIDs (RFC 3501 §6.4.8).
func uidPrefix(numSet imap.NumSet, name string) string {
	if _, ok := numSet.(imap.UIDSet); ok {
		return "uid " + name
	}
	return name
}

func (c *counted) Login(username, password string) error {
	c.count("login")
	return c.session.Login(username, password)
}

func (c *counted) Authenticate(mech string) (sasl.Server, error) {
	c.count("authenticate")
	return c.session.Authenticate(mech)
}

func (c *counted) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	c.unselectPending = false // the Unselect before it was part of this SELECT
	if options != nil && options.ReadOnly {
		c.count("examine")
	} else {
		c.count("select")
	}
	return c.session.Select(name, options)
}

func (c *counted) Unselect() error {
	if c.closed {
		c.closed = false
	} else {
		c.unselectPending = true
	}
	return c.session.Unselect()
}

func (c *counted) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	switch {
	case w == nil || *w == (imapserver.ExpungeWriter{}):
		c.count("close")
		c.closed = true
	case uids != nil:
		c.count("uid expunge")
	default:
		c.count("expunge")
	}
	return c.session.Expunge(w, uids)
}

func (c *counted) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	// imapserver polls after most commands (and for NOOP and CHECK): an UNSELECT is over.
	if c.unselectPending {
		c.unselectPending = false
		c.tally("unselect")
	}
	return c.session.Poll(w, allowExpunge)
}

func (c *counted) Create(name string, options *imap.CreateOptions) error {
	c.count("create")
	return c.session.Create(name, options)
}

func (c *counted) Delete(name string) error {
	c.count("delete")
	return c.session.Delete(name)
}

func (c *counted) Rename(mailbox, newName string, options *imap.RenameOptions) error {
	c.count("rename")
	return c.session.Rename(mailbox, newName, options)
}

func (c *counted) Subscribe(name string) error {
	c.count("subscribe")
	return c.session.Subscribe(name)
}

func (c *counted) Unsubscribe(name string) error {
	c.count("unsubscribe")
	return c.session.Unsubscribe(name)
}

func (c *counted) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	c.count("list")
	return c.session.List(w, ref, patterns, options)
}

func (c *counted) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	c.count("status")
	return c.session.Status(name, options)
}

func (c *counted) Namespace() (*imap.NamespaceData, error) {
	c.count("namespace")
	return c.session.Namespace()
}

func (c *counted) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	c.count("append")
	return c.session.Append(mailbox, r, options)
}

func (c *counted) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	c.count("idle")
	return c.session.Idle(w, stop)
}

func (c *counted) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	if kind == imapserver.NumKindUID {
		c.count("uid search")
	} else {
		c.count("search")
	}
	return c.session.Search(kind, criteria, options)
}

func (c *counted) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	c.count(uidPrefix(numSet, "fetch"))
	return c.session.Fetch(w, numSet, options)
}

func (c *counted) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	c.count(uidPrefix(numSet, "store"))
	return c.session.Store(w, numSet, flags, options)
}

func (c *counted) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	c.count(uidPrefix(numSet, "copy"))
	return c.session.Copy(numSet, dest)
}

func (c *counted) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	c.count(uidPrefix(numSet, "move"))
	return c.session.Move(w, numSet, dest)
}

// Close ends the session and writes its logout line: one Info line per connection, with
// the user (once logged in), the remote address, how long it lasted, the bytes it moved
// on the wire (TLS included; counted by the server's metrics listener) and what it did.
func (c *counted) Close() error {
	if c.unselectPending {
		c.unselectPending = false
		c.tally("unselect")
	}
	err := c.session.Close()
	if c.guard != nil && c.guard.handedOff.Load() {
		// STARTTLS: the session goes on in another imapserver connection, which logs it.
		return err
	}
	c.mu.Lock()
	st, loggedIn := c.stats, c.acct != nil
	c.mu.Unlock()
	in, out, _ := metrics.Transferred(st.netConn)
	msg := "imap disconnect"
	if loggedIn {
		msg = "imap logout"
	}
	c.log.Info(msg, "duration", time.Since(st.start).Round(time.Millisecond),
		"in", in, "out", out, "commands", st.commands,
		"fetched", st.fetched, "appended", st.appended, "expunged", st.expunged)
	return err
}
