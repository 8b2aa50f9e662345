package pop3

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// Fuzz targets for the POP3 server. Seeds live in the code below and in
// testdata/fuzz/<FuzzName>/ (crashers found by `go test -fuzz` are kept there as
// regression tests, and run by every plain `go test`).

// FuzzCommandLine checks the command-line parser: whatever the octets, readLine returns
// a line within the limit or errLineTooLong, and splitCommand names a command only with a
// keyword of at most 8 ASCII letters and digits, upper-cased, that together with the
// argument gives back the line it came from.
func FuzzCommandLine(f *testing.F) {
	for _, seed := range []string{
		"STAT\r\n", "retr 1\r\n", "PASS a b  c \r\n", " STAT\r\n", "ST\x00T\r\n", "\r\n",
		"TOP 1 2\n", "\xff\xfe\r\n", "USER\r\r\n", strings.Repeat("x", 1030) + "\r\nNOOP\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(in), 16) // small, to exercise fragments
		for {
			line, err := readLine(r, 64)
			if err == errLineTooLong {
				continue
			}
			if err != nil {
				return
			}
			if len(line) > 64 {
				t.Fatalf("readLine returned %d octets, limit 64", len(line))
			}
			if bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("line %q contains LF", line)
			}
			name, arg := splitCommand(line)
			switch name {
			case "":
				// An empty line, or a lone space (an empty keyword and no argument).
				if len(line) != 0 && string(line) != " " {
					t.Fatalf("empty name for line %q", line)
				}
				continue
			case "?":
				continue
			}
			if len(name) > 8 {
				t.Fatalf("keyword %q longer than 8", name)
			}
			for i := 0; i < len(name); i++ {
				if c := name[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
					t.Fatalf("keyword %q has %q", name, c)
				}
			}
			back := name
			if len(line) > len(name) {
				back += " " + arg
			}
			if !strings.EqualFold(back, string(line)) {
				t.Fatalf("splitCommand(%q) = %q, %q: does not give the line back", line, name, arg)
			}
		}
	})
}

// FuzzSession feeds arbitrary input to a whole session on the in-memory store and checks
// the conversation, not only that nothing panics:
//
//   - the greeting comes first and is +OK;
//   - every complete command line gets exactly one status line (+OK or -ERR), in order; a
//     SASL exchange may insert "+ " challenges, each answered by one more input line;
//   - a multi-line answer (CAPA, AUTH without a mechanism, LIST and UIDL without an
//     argument, RETR, TOP) ends with a line "." and has no other line ".";
//   - the session ends only after QUIT, after "too many bad commands", or when the input
//     runs out; and nothing is written after that;
//   - every line ends in CRLF.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"CAPA\r\nQUIT\r\n",
		"USER u\r\nPASS p\r\nSTAT\r\nLIST\r\nUIDL 1\r\nRETR 1\r\nTOP 2 0\r\nDELE 1\r\nRSET\r\nQUIT\r\n",
		"AUTH PLAIN AHUAcA==\r\nLIST 2\r\nDELE 2\r\nQUIT\r\n",
		"AUTH LOGIN\r\ndQ==\r\ncA==\r\nRETR 3\r\n",
		"AUTH PLAIN\r\n*\r\nAUTH\r\nUTF8\r\nUSER \xc3\xa9\r\n",
		"RETR 0\r\n\x00\xff\r\nTOP 1 99999999999999999999999\r\n",
		"USER u\nPASS p\nTOP 1 1\n",
		// Pipelined, mixed case, bare LF, a line one octet too long, an unterminated tail.
		"user u\npass p\r\nlist\r\nuidl\r\nretr 1\nretr 2\r\nstat\r\n" + strings.Repeat("N", 1025) + "\r\nnoop\r\nQUI",
		// Ten bad commands in a row before login close the session.
		strings.Repeat("XYZZY\r\n", 12) + "CAPA\r\n",
		// SASL: an overlong response, a response that is not base64, LOGIN cancelled.
		"AUTH PLAIN\r\n" + strings.Repeat("A", 9000) + "\r\nAUTH PLAIN\r\n!!!\r\nAUTH LOGIN\r\ndQ==\r\n*\r\nQUIT\r\n",
		"AUTH PLAIN =\r\nAUTH LOGIN dQ==\r\ncA==\r\nUIDL\r\nLIST 1 2\r\nDELE 1\r\nDELE 1\r\nRETR 1\r\nQUIT\r\n",
		"APOP u 0123456789abcdef0123456789abcdef\r\nSTLS\r\nPASS p\r\nUSER\r\nUSER u\x01\r\nQUIT\r\n",
		"USER u\r\nPASS wrong\r\nUSER u\r\nPASS p\r\nUSER u\r\nAUTH PLAIN AHUAcA==\r\nTOP 1 -1\r\nTOP 2 1000\r\nLIST 0\r\nQUIT\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 64<<10 {
			t.Skip("long enough to overflow every line limit; keeps minimizing fast")
		}
		out := runScript(t, string(in))
		if err := checkConversation(in, out); err != nil {
			t.Fatalf("%v\ninput: %q\noutput: %q", err, in, out)
		}
	})
}

// checkConversation is FuzzSession's model of a POP3 conversation (see there).
func checkConversation(in []byte, out string) error {
	if out == "" {
		return fmt.Errorf("no greeting")
	}
	if !strings.HasSuffix(out, "\r\n") {
		return fmt.Errorf("output does not end in CRLF")
	}
	lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
	next := func() (string, bool) {
		if len(lines) == 0 {
			return "", false
		}
		l := lines[0]
		lines = lines[1:]
		return l, true
	}
	if g, _ := next(); !strings.HasPrefix(g, "+OK ") {
		return fmt.Errorf("greeting %q", g)
	}
	// The complete input lines, as readLine sees them; an unterminated tail is never read.
	var input [][]byte
	for rest := in; ; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		input = append(input, bytes.TrimSuffix(rest[:i], []byte{'\r'}))
		rest = rest[i+1:]
	}
	isStatus := func(l string) bool { return strings.HasPrefix(l, "+OK") || strings.HasPrefix(l, "-ERR") }
	for len(input) > 0 {
		line := input[0]
		input = input[1:]
		status, ok := next()
		if !ok {
			return fmt.Errorf("no answer to %q", line)
		}
		// A SASL exchange: each challenge consumes one more input line.
		for strings.HasPrefix(status, "+ ") {
			if len(input) == 0 {
				if len(lines) > 0 {
					return fmt.Errorf("output after the input ran out in a SASL exchange: %q", lines)
				}
				return nil
			}
			input = input[1:]
			if status, ok = next(); !ok {
				return fmt.Errorf("no answer after a SASL response to %q", line)
			}
		}
		if !isStatus(status) {
			return fmt.Errorf("answer to %q is %q, not a status line", line, status)
		}
		name, arg := "", ""
		if len(line) <= maxCommandLine {
			name, arg = splitCommand(line)
		}
		if strings.HasPrefix(status, "+OK") && multiLine(name, arg) {
			for {
				l, ok := next()
				if !ok {
					return fmt.Errorf("multi-line answer to %q not terminated", line)
				}
				if l == "." {
					break
				}
			}
		}
		if len(lines) > 0 && lines[0] == "-ERR too many bad commands, closing connection" {
			if len(lines) > 1 {
				return fmt.Errorf("output after closing for bad commands: %q", lines[1:])
			}
			return nil
		}
		if name == "QUIT" {
			if len(lines) > 0 {
				return fmt.Errorf("output after QUIT: %q", lines)
			}
			return nil
		}
	}
	if len(lines) > 0 {
		return fmt.Errorf("output nobody asked for: %q", lines)
	}
	return nil
}

// multiLine reports whether a +OK answer to the command is followed by lines and ".".
func multiLine(name, arg string) bool {
	switch name {
	case "CAPA", "RETR", "TOP":
		return true
	case "LIST", "UIDL":
		return len(strings.Fields(arg)) == 0
	case "AUTH":
		mech, _, _ := strings.Cut(arg, " ")
		return mech == ""
	}
	return false
}

// TestConversationModel checks that FuzzSession's model rejects what it should: a missing
// answer, an unterminated multi-line answer, and output after QUIT.
func TestConversationModel(t *testing.T) {
	in := []byte("CAPA\r\nNOOP\r\nQUIT\r\n")
	good := "+OK hi\r\n+OK caps\r\nUSER\r\n.\r\n-ERR no\r\n+OK bye\r\n"
	if err := checkConversation(in, good); err != nil {
		t.Fatalf("good conversation refused: %v", err)
	}
	for name, out := range map[string]string{
		"missing answer":       "+OK hi\r\n+OK caps\r\nUSER\r\n.\r\n-ERR no\r\n",
		"unterminated":         "+OK hi\r\n+OK caps\r\nUSER\r\n-ERR no\r\n+OK bye\r\n",
		"output after QUIT":    good + "-ERR extra\r\n",
		"not a status line":    "+OK hi\r\n+OK caps\r\n.\r\nhello\r\n+OK bye\r\n",
		"no greeting":          "",
		"no CRLF at the end":   strings.TrimSuffix(good, "\r\n"),
		"two answers for NOOP": "+OK hi\r\n+OK caps\r\n.\r\n+OK\r\n+OK\r\n+OK bye\r\n",
	} {
		if err := checkConversation(in, out); err == nil {
			t.Errorf("%s: accepted %q", name, out)
		}
	}
}
