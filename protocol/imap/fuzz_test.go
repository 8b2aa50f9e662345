package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
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
