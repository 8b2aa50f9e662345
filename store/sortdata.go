package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// SortRow is what IMAP SORT and THREAD (RFC 5256) read of one message: the columns of
// the sort criteria and the threading algorithms, and nothing else.
type SortRow struct {
	UID          uint32
	InternalDate time.Time
	Size         int64
	Envelope     Envelope
	// References is the References header field's body, unfolded (RFC 5322 §3.6.4), ""
	// when absent; only when SortData was asked for it.
	References string
}

// SortData returns the SortRows of the messages in ranges (all when empty), in ascending
// UID order, in one query. withReferences also reads each message's stored header for its
// References field (THREAD=REFERENCES); without it the header is not read.
func (s *Store) SortData(ctx context.Context, mailboxID int64, withReferences bool, ranges ...UIDRange) ([]SortRow, error) {
	cond, args, keep := uidRangeClause(ranges)
	headerCol := "NULL"
	if withReferences {
		headerCol = "b.header"
	}
	rows, err := s.r.QueryContext(ctx, `SELECT m.uid, m.internal_date, m.internal_tz, m.size, b.envelope, `+headerCol+`
		FROM messages m JOIN bodies b ON b.id = m.body_id
		WHERE m.mailbox_id = ? AND `+strings.ReplaceAll(cond, "uid", "m.uid")+` ORDER BY m.uid`,
		append([]any{mailboxID}, args...)...)
	if err != nil {
		return nil, wrapErr("read sort data", err)
	}
	defer rows.Close()
	var out []SortRow
	var env sql.RawBytes
	var header sql.NullString
	for rows.Next() {
		var r SortRow
		var date, tz int64
		if err := rows.Scan(&r.UID, &date, &tz, &r.Size, &env, &header); err != nil {
			return nil, wrapErr("read sort data", err)
		}
		if keep != nil && !keep(r.UID) {
			continue
		}
		r.InternalDate = internalDate(date, tz)
		if err := decodeEnvelope(env, &r.Envelope); err != nil {
			return nil, fmt.Errorf("store: read sort data of uid %d: envelope: %w", r.UID, err)
		}
		if header.Valid {
			r.References = headerField(header.String, "References")
		}
		out = append(out, r)
	}
	return out, wrapErr("read sort data", rows.Err())
}

// headerField returns the body of the first field called name in the raw header section,
// unfolded (the line breaks before continuation lines removed), or "" without one.
func headerField(header, name string) string {
	for len(header) > 0 {
		line, rest, _ := strings.Cut(header, "\n")
		header = rest
		colon := strings.IndexByte(line, ':')
		if colon != len(name) || !strings.EqualFold(line[:colon], name) {
			continue
		}
		var b strings.Builder
		b.WriteString(strings.TrimRight(line[colon+1:], "\r"))
		for len(header) > 0 && (header[0] == ' ' || header[0] == '\t') {
			line, header, _ = strings.Cut(header, "\n")
			b.WriteString(strings.TrimRight(line, "\r"))
		}
		return strings.TrimSpace(b.String())
	}
	return ""
}
