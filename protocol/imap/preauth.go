package imap

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"sync/atomic"
)

// maxUnknownBeforeLogin is how many unknown commands a client may send before it logs in;
// the next one ends the connection (as Dovecot does: a guard against other protocols
// talking to the IMAP port).
const maxUnknownBeforeLogin = 3

// maxFilteredLine is the longest command line the filter looks at; longer ones are handed
// to imapserver as they are, which refuses them.
const maxFilteredLine = 64 << 10

// imapserver knows these commands; with UID, the second list.
var (
	knownCommands = map[string]bool{
		"NOOP": true, "CHECK": true, "LOGOUT": true, "CAPABILITY": true, "STARTTLS": true,
		"AUTHENTICATE": true, "UNAUTHENTICATE": true, "LOGIN": true, "ENABLE": true,
		"CREATE": true, "DELETE": true, "RENAME": true, "SUBSCRIBE": true, "UNSUBSCRIBE": true,
		"STATUS": true, "LIST": true, "LSUB": true, "NAMESPACE": true, "IDLE": true,
		"SELECT": true, "EXAMINE": true, "CLOSE": true, "UNSELECT": true, "APPEND": true,
		"FETCH": true, "EXPUNGE": true, "STORE": true, "COPY": true, "MOVE": true, "SEARCH": true,
	}
	knownUIDCommands = map[string]bool{
		"FETCH": true, "STORE": true, "COPY": true, "MOVE": true, "SEARCH": true, "EXPUNGE": true,
	}
	literalAtLineEnd = regexp.MustCompile(`\{(\d+)\+?\}\r?\n$`)
)

// preauthConn sits between a plaintext connection and imapserver until the client logs
// in. imapserver answers an unknown command before login by closing the connection at
// once; RFC 3501 asks for BAD, and clients (and the acceptance suite) expect to go on. So
// this filter takes unknown commands out of the stream and answers them with BAD itself,
// once imapserver has consumed (and answered) everything before them, so responses keep
// their order. Literals are passed through uninspected. After login or STARTTLS (or on
// implicit TLS, where it is not used) the filter steps aside.
type preauthConn struct {
	net.Conn
	authed atomic.Bool // set by the session at login

	off       bool     // stepped aside for good
	pending   []byte   // read from the network, not yet inspected
	out       []byte   // inspected, for imapserver
	badTags   []string // unknown commands to answer before handing on more
	literal   int64    // bytes of a literal still to pass uninspected
	continued bool     // the next line continues a command after a literal
	unknown   int
}

func newPreauthConn(c net.Conn) *preauthConn { return &preauthConn{Conn: c} }

// NetConn is the connection beneath the filter: sessions.Of and metrics.Transferred look
// through it.
func (c *preauthConn) NetConn() net.Conn { return c.Conn }

func (c *preauthConn) Read(p []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		// imapserver has consumed everything handed on and answered it: answer the unknown
		// commands that followed.
		for _, tag := range c.badTags {
			c.unknown++
			if c.unknown > maxUnknownBeforeLogin {
				fmt.Fprintf(c.Conn, "%s BAD Unknown command\r\n* BYE Too many unknown commands\r\n", tag)
				c.Conn.Close()
				return 0, io.EOF
			}
			if _, err := fmt.Fprintf(c.Conn, "%s BAD Unknown command\r\n", tag); err != nil {
				return 0, err
			}
		}
		c.badTags = c.badTags[:0]
		if !c.off && c.authed.Load() {
			c.off = true
		}
		if c.off {
			if len(c.pending) > 0 {
				c.out, c.pending = c.pending, nil
				continue
			}
			return c.Conn.Read(p)
		}
		if c.inspect() {
			continue
		}
		buf := make([]byte, 4096)
		n, err := c.Conn.Read(buf)
		c.pending = append(c.pending, buf[:n]...)
		if n == 0 && err != nil {
			if len(c.pending) > 0 {
				c.out, c.pending = c.pending, nil
				continue
			}
			return 0, err
		}
	}
}

// inspect moves what it can from pending to out, stopping after an unknown command (which
// it drops and queues for BAD). It reports whether it made progress.
func (c *preauthConn) inspect() bool {
	progress := false
	for len(c.pending) > 0 {
		if c.literal > 0 {
			k := min(c.literal, int64(len(c.pending)))
			c.out = append(c.out, c.pending[:k]...)
			c.pending = c.pending[k:]
			c.literal -= k
			progress = true
			continue
		}
		i := bytes.IndexByte(c.pending, '\n')
		if i < 0 {
			if len(c.pending) > maxFilteredLine {
				c.out, c.pending, c.off = append(c.out, c.pending...), nil, true
				return true
			}
			return progress
		}
		line := c.pending[:i+1]
		if !c.continued {
			if tag, unknown, starttls := judge(line); unknown {
				c.badTags = append(c.badTags, tag)
				c.pending = c.pending[i+1:]
				return true
			} else if starttls {
				// TLS follows: hand everything on and step aside.
				c.out, c.pending, c.off = append(c.out, c.pending...), nil, true
				return true
			}
		}
		c.out = append(c.out, line...)
		c.pending = c.pending[i+1:]
		progress = true
		c.continued = false
		if m := literalAtLineEnd.FindSubmatch(line); m != nil {
			n, err := strconv.ParseInt(string(m[1]), 10, 64)
			if err != nil {
				// Absurd: let imapserver refuse it.
				c.out, c.pending, c.off = append(c.out, c.pending...), nil, true
				return true
			}
			c.literal, c.continued = n, true
		}
	}
	return progress
}

// judge looks at the first line of a command: "tag name ...". It reports an unknown
// command name (with a tag imapserver could parse), or STARTTLS.
func judge(line []byte) (tag string, unknown, starttls bool) {
	line = bytes.TrimRight(line, "\r\n")
	fields := bytes.SplitN(line, []byte(" "), 4)
	if len(fields) < 2 || !isAtom(fields[0]) || len(fields[1]) == 0 {
		return "", false, false // not a command imapserver could read; it handles that
	}
	name := string(bytes.ToUpper(fields[1]))
	if name == "UID" {
		if len(fields) < 3 || knownUIDCommands[string(bytes.ToUpper(fields[2]))] {
			return "", false, false
		}
		return string(fields[0]), true, false
	}
	if !knownCommands[name] {
		return string(fields[0]), true, false
	}
	return string(fields[0]), false, name == "STARTTLS"
}

func isAtom(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, ch := range b {
		if ch <= 0x20 || ch >= 0x7f || bytes.IndexByte([]byte(`(){%*"\]`), ch) >= 0 {
			return false
		}
	}
	return true
}
