package imap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/internal/auth"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// FuzzParseCommand feeds arbitrary client input to the command reader, as a session
// does: commands are read until the input ends, every refusal is followed by finish, and
// APPEND's messages are streamed. Nothing may panic, every parsed command must be one the
// grammar knows, and every name must come out as valid UTF-8.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		"a1 LOGIN alice \"secret\"\r\na2 SELECT INBOX (CONDSTORE)\r\n",
		"a UID FETCH 1:*,3 (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100> BINARY[1] BINARY.SIZE[]) (CHANGEDSINCE 5 VANISHED)\r\n",
		"a SEARCH RETURN (MIN MAX) CHARSET UTF-8 OR (NOT SEEN) UID $ HEADER x {3+}\r\nabc SINCE 1-Jan-2020\r\n",
		"a APPEND \"Entw&APw-rfe\" (\\Seen) \" 1-Jan-2020 00:00:00 +0000\" {5+}\r\nhello ~{2+}\r\n\x00\x01\r\n",
		"a STORE 1:3 (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Deleted)\r\n",
		"a LIST (SUBSCRIBED) \"\" (% \"*\") RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
		"a SELECT x (QRESYNC (1 2 1:9 (1,3 4,9)))\r\n",
		"a LOGIN {5}\r\nalice {2}\r\npw\r\n",
		"a APPEND INBOX {99999999999}\r\nb NOOP\r\n",
		"a UID SORT RETURN (MIN ALL) (REVERSE DATE DISPLAYTO) UTF-8 OR SEEN 1:3\r\nb THREAD REFERENCES US-ASCII ALL\r\nc SETQUOTA \"User quota\" (STORAGE 5)\r\n",
		"a APPEND INBOX {1+}\r\nx (\\Seen) {2+}\r\nyz\r\nb GETQUOTAROOT INBOX\r\n",
		"a UID SEARCH RETURN (SAVE COUNT PARTIAL -1:-100) OR OLDER 60 NOT YOUNGER 5 SAVEDON 1-Jan-2020 EMAILID E1 THREADID T-1_x SAVEDATESUPPORTED\r\n",
		"a UID FETCH 1:* (SAVEDATE EMAILID THREADID PREVIEW (LAZY) PREVIEW) (PARTIAL 1:10)\r\nb FETCH 1 PREVIEW\r\nc STATUS x (MAILBOXID MESSAGES)\r\n",
		"a ID (\"name\" \"x\" \"version\" NIL {3}\r\nabc \"x-originating-ip\" \"::1\")\r\nb ID NIL\r\nc COMPRESS DEFLATE\r\nd UNAUTHENTICATE\r\n",
	} {
		f.Add([]byte(seed), false)
	}
	f.Fuzz(func(t *testing.T, input []byte, utf8Names bool) {
		r := newCommandReader(bufio.NewReaderSize(bytes.NewReader(input), 16), func() error { return nil })
		r.utf8Names = utf8Names
		r.appendLimit = 1 << 16
		for range 64 {
			cmd, err := r.readCommand()
			var ie *imap.Error
			if errors.As(err, &ie) {
				if ie.Type == imap.StatusResponseTypeBye {
					return
				}
				continue
			}
			if err != nil {
				return // the input ended
			}
			if _, ok := argParsers[cmd.name]; !ok {
				t.Fatalf("parsed an unknown command %q", cmd.name)
			}
			if r.count > commandLineLimit {
				t.Fatalf("read %d octets of a command, over the limit", r.count)
			}
			switch a := cmd.args.(type) {
			case *mailboxArgs:
				if !utf8.ValidString(a.mailbox) {
					t.Fatalf("mailbox name %q is not UTF-8", a.mailbox)
				}
			case *appendArgs:
				for m := a.first; m != nil; {
					n, err := io.Copy(io.Discard, m.body)
					if err != nil {
						return
					}
					if n != m.size {
						t.Fatalf("APPEND literal of %d gave %d octets", m.size, n)
					}
					if m, err = a.next(); err != nil {
						if !errors.As(err, &ie) {
							return
						}
						break
					}
				}
			}
		}
	})
}

// FuzzModifiedUTF7 checks that a name decoded from modified UTF-7 encodes back to exactly
// what was sent (the decoder takes only the one spelling RFC 3501 §5.1.3 allows), and
// that every UTF-8 name survives the round trip.
func FuzzModifiedUTF7(f *testing.F) {
	for _, seed := range []string{"INBOX", "Entw&APw-rfe", "&ZeVnLIqe-", "a&-b", "&2D3eAA-", "&Jjo", "Entwürfe"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if dec, err := decodeModifiedUTF7(s); err == nil {
			if !utf8.ValidString(dec) {
				t.Fatalf("%q decoded to invalid UTF-8 %q", s, dec)
			}
			if enc := encodeModifiedUTF7(dec); enc != s {
				t.Fatalf("%q decoded to %q, which encodes as %q", s, dec, enc)
			}
		}
		if utf8.ValidString(s) {
			enc := encodeModifiedUTF7(s)
			if dec, err := decodeModifiedUTF7(enc); err != nil || dec != s {
				t.Fatalf("%q encoded as %q decodes to %q, %v", s, enc, dec, err)
			}
		}
	})
}

// FuzzSession runs arbitrary client input through a whole session against a real store,
// logged in first: every handler meets what the parser lets through. No input may panic a
// session (a recovered panic is logged, and fails here), and the session always ends.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"a SELECT INBOX\r\nb FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (Subject)] BODYSTRUCTURE ENVELOPE)\r\n",
		"a SELECT INBOX\r\nb UID SEARCH RETURN (MIN MAX COUNT SAVE) OR SEEN UNSEEN\r\nc UID FETCH $ (BINARY.PEEK[1]<0.5> BINARY.SIZE[1])\r\n",
		"a CREATE x/y\r\nb LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (* %) RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\nc RENAME x z\r\nd DELETE z/y\r\n",
		"a APPEND INBOX (\\Seen $k) {5+}\r\nhello\r\nb SELECT INBOX\r\nc STORE 1:* +FLAGS.SILENT (\\Deleted)\r\nd UID EXPUNGE 1:*\r\n",
		"a SELECT INBOX\r\nb COPY 1 Trash\r\nc MOVE 1:* Trash\r\nd IDLE\r\nDONE\r\ne CLOSE\r\n",
		"a ENABLE IMAP4rev2 UTF8=ACCEPT\r\nb SELECT INBOX\r\nc SEARCH CHARSET UTF-8 TEXT \"gr\u00fc\u00df\"\r\nd STATUS INBOX (MESSAGES UIDNEXT UNSEEN DELETED SIZE)\r\n",
		"a EXAMINE INBOX\r\nb FETCH 1 RFC822\r\nc STORE 1 FLAGS x\r\nd UNSELECT\r\ne NAMESPACE\r\n",
		"a APPEND INBOX {1+}\r\nx {2+}\r\nyz\r\nb SELECT INBOX\r\nc SORT RETURN (ALL) (SUBJECT) UTF-8 ALL\r\nd UID THREAD ORDEREDSUBJECT UTF-8 1:*\r\ne GETQUOTA \"User quota\"\r\n",
	} {
		f.Add([]byte(seed))
	}
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st, err := store.Open(f.TempDir(), store.Options{Logger: logger})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	acct, err := st.CreateAccount(context.Background(), store.NewAccount{Address: testUser, Password: testPassword})
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range []string{plainMessage("One", "x\r\n"), multipartMessage} {
		if _, err := st.Deliver(context.Background(), acct.ID, strings.NewReader(m), store.DeliverOptions{Mailbox: "INBOX"}); err != nil {
			f.Fatal(err)
		}
	}
	srv := newServer(st, Options{Logger: logger, Auth: &auth.Authenticator{Store: st, Plaintext: auth.PlaintextPolicy{Always: true}},
		AppendLimit: 1 << 16})
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioGuard)
		defer cancel()
		srv.Shutdown(ctx)
	})
	f.Fuzz(func(t *testing.T, input []byte) {
		if len(input) > 16<<10 {
			t.Skip("long enough")
		}
		client, server := net.Pipe()
		defer client.Close()
		if !srv.start(server) {
			t.Fatal("server refused the connection")
		}
		go io.Copy(io.Discard, client) // the answers
		client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(client, "L LOGIN %q %q\r\n", testUser, testPassword)
		client.Write(input)
		client.Write([]byte("\r\nZ LOGOUT\r\n"))
		// A session still reading a literal ends here; the loop only guards against a hang.
		client.Close()
		for deadline := time.Now().Add(ioGuard); ; time.Sleep(time.Millisecond) {
			if len(srv.sessions.Live()) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the session never ended after %q", input)
			}
		}
		if strings.Contains(logs.String(), "recovered from a panic") {
			t.Fatalf("a session panicked on %q:\n%s", input, logs.String())
		}
	})
}
