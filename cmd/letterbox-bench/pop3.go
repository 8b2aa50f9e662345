package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"time"
)

// pop3Client is the least of a POP3 client (RFC 1939) a benchmark needs: one command at a
// time, no pipelining, multi-line answers read to the terminating "." (RFC 1939 section 3)
// and counted, not kept. STLS is RFC 2595 section 4.
type pop3Client struct {
	conn net.Conn
	text *textproto.Conn
}

// dialPOP3 connects and reads the greeting; implicit TLS or STLS as the options say.
func dialPOP3(addr string, o connOptions) (*pop3Client, error) {
	d := net.Dialer{Timeout: o.timeout}
	var conn net.Conn
	var err error
	if o.tls {
		conn, err = tls.DialWithDialer(&d, "tcp", addr, o.tlsConfig())
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("pop3: dial %s: %w", addr, err)
	}
	c := &pop3Client{conn: conn, text: textproto.NewConn(conn)}
	if _, err := c.status(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("pop3: greeting: %w", err)
	}
	if o.startTLS {
		if _, err := c.cmd("STLS"); err != nil {
			conn.Close()
			return nil, err
		}
		tconn := tls.Client(conn, o.tlsConfig())
		c.conn, c.text = tconn, textproto.NewConn(tconn)
	}
	return c, nil
}

// status reads one status line: "+OK ..." returns the rest, "-ERR ..." an error.
func (c *pop3Client) status() (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(time.Minute))
	line, err := c.text.ReadLine()
	if err != nil {
		return "", err
	}
	if rest, ok := strings.CutPrefix(line, "+OK"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", fmt.Errorf("pop3: %s", line)
}

// cmd sends one command line and reads its status line.
func (c *pop3Client) cmd(format string, args ...any) (string, error) {
	if err := c.text.PrintfLine(format, args...); err != nil {
		return "", fmt.Errorf("pop3: send: %w", err)
	}
	verb, _, _ := strings.Cut(format, " ")
	s, err := c.status()
	if err != nil {
		return "", fmt.Errorf("%s: %w", verb, err)
	}
	return s, nil
}

// multi sends a command with a multi-line answer and returns its size (dot-unstuffed, CRLF
// line ends counted as two bytes) and its number of lines; the text itself is discarded.
func (c *pop3Client) multi(format string, args ...any) (bytes int64, lines int, err error) {
	if _, err := c.cmd(format, args...); err != nil {
		return 0, 0, err
	}
	r := bufio.NewReader(c.text.DotReader())
	for {
		line, err := r.ReadSlice('\n')
		bytes += int64(len(line))
		if len(line) > 0 && line[len(line)-1] == '\n' {
			lines++
			bytes++ // DotReader turned the CRLF into LF
		}
		if err == io.EOF {
			return bytes, lines, nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return bytes, lines, fmt.Errorf("pop3: read answer: %w", err)
		}
	}
}

func (c *pop3Client) login(user, pass string) error {
	if _, err := c.cmd("USER %s", user); err != nil {
		return err
	}
	_, err := c.cmd("PASS %s", pass)
	return err
}

// stat returns the message count of STAT.
func (c *pop3Client) stat() (int, error) {
	s, err := c.cmd("STAT")
	if err != nil {
		return 0, err
	}
	var n int
	var size int64
	if _, err := fmt.Sscanf(s, "%d %d", &n, &size); err != nil {
		return 0, fmt.Errorf("pop3: STAT answer %q: %w", s, err)
	}
	return n, nil
}

func (c *pop3Client) quit() error {
	_, err := c.cmd("QUIT")
	c.conn.Close()
	return err
}

func (c *pop3Client) Close() error { return c.conn.Close() }
