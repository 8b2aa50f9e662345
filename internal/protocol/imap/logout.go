package imap

import "time"

// sessionStats are a session's counters for its logout line (as Dovecot's
// imap_logout_format), written by session.end (conn.go). The counters are kept by the
// commands themselves, under the session mutex; commands counts the commands of the table
// that have a metric name (command.go).
type sessionStats struct {
	start    time.Time
	commands int
	fetched  int // messages sent with a body section (BODY[...], BINARY[...], RFC822...)
	appended int
	expunged int // removed by EXPUNGE, UID EXPUNGE, CLOSE and MOVE
}
