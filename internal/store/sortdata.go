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
	// SentDate is the Date header field's instant, the zero time when it is missing or
	// unparseable (RFC 5256 §2.2 then falls back to InternalDate: the caller's choice).
	SentDate time.Time
	// Subject is the Subject field, RFC 2047-decoded, as in the ENVELOPE; only with
	// SortSubject or SortThreading.
	Subject string
	// MessageID, InReplyTo (the first msg-id of In-Reply-To) and References (the field's
	// body, unfolded as RFC 5322 §3.6.4 folds it, "" when absent): only with SortThreading.
	MessageID, InReplyTo, References string
	// Envelope is the whole ENVELOPE, only with SortAddresses (FROM, TO, CC, DISPLAYFROM,
	// DISPLAYTO); nil otherwise.
	Envelope *Envelope
}

// SortFields says what SortData reads beyond UID, INTERNALDATE, RFC822.SIZE and the sent
// date, which it always reads.
type SortFields uint8

const (
	// SortSubject reads the Subject (SORT SUBJECT, THREAD ORDEREDSUBJECT).
	SortSubject SortFields = 1 << iota
	// SortThreading reads the Subject, Message-ID, In-Reply-To and References
	// (THREAD=REFERENCES).
	SortThreading
	// SortAddresses decodes the whole stored envelope, for the address criteria.
	SortAddresses
)

// SortData returns the SortRows of the messages in ranges (all when empty), in ascending
// UID order. Without SortAddresses they come from the cache of the mailbox's rows
// (sortcache.go), brought up to date with the store first; otherwise, and to fill the
// cache, from one query of the messages and the narrow sort_keys table (sortkeys.go),
// filled at delivery, with SortAddresses the bodies' envelopes too.
func (s *Store) SortData(ctx context.Context, mailboxID int64, fields SortFields, ranges ...UIDRange) ([]SortRow, error) {
	if fields&SortAddresses == 0 {
		return s.cachedSortData(ctx, mailboxID, fields, ranges)
	}
	return s.querySortData(ctx, mailboxID, fields, ranges...)
}

// querySortData is SortData from the database.
func (s *Store) querySortData(ctx context.Context, mailboxID int64, fields SortFields, ranges ...UIDRange) ([]SortRow, error) {
	cond, args, keep := uidRangeClause(ranges)
	text := fields&(SortSubject|SortThreading) != 0
	thread := fields&SortThreading != 0
	cols := "m.uid, m.internal_date, m.internal_tz, m.size, m.body_id, k.body_id IS NOT NULL, k.sent_date"
	from := "messages m LEFT JOIN sort_keys k ON k.body_id = m.body_id"
	if text {
		cols += ", k.subject"
	}
	if thread {
		cols += ", k.message_id, k.in_reply_to, k.refs"
	}
	if fields&SortAddresses != 0 {
		cols += ", b.envelope"
		from += " JOIN bodies b ON b.id = m.body_id"
	}
	rows, err := s.readers.QueryContext(ctx, `SELECT `+cols+` FROM `+from+`
		WHERE m.mailbox_id = ? AND `+strings.ReplaceAll(cond, "uid", "m.uid")+` ORDER BY m.uid`,
		append([]any{mailboxID}, args...)...)
	if err != nil {
		return nil, wrapErr("read sort data", err)
	}
	defer rows.Close()
	var (
		out     []SortRow
		missing []int   // indexes in out of rows whose body has no sort_keys row
		bodies  []int64 // their body ids
		env     sql.RawBytes
		subject sql.NullString
		mid     sql.NullString
		irt     sql.NullString
		refs    sql.NullString
	)
	dest := make([]any, 0, 12)
	var r SortRow
	var date, tz, bodyID int64
	var have bool
	var sent sql.NullInt64
	dest = append(dest, &r.UID, &date, &tz, &r.Size, &bodyID, &have, &sent)
	if text {
		dest = append(dest, &subject)
	}
	if thread {
		dest = append(dest, &mid, &irt, &refs)
	}
	if fields&SortAddresses != 0 {
		dest = append(dest, &env)
	}
	for rows.Next() {
		r = SortRow{}
		if err := rows.Scan(dest...); err != nil {
			return nil, wrapErr("read sort data", err)
		}
		if keep != nil && !keep(r.UID) {
			continue
		}
		r.InternalDate = internalDate(date, tz)
		if sent.Valid {
			r.SentDate = time.Unix(sent.Int64, 0).UTC()
		}
		r.Subject, r.MessageID, r.InReplyTo, r.References = subject.String, mid.String, irt.String, refs.String
		if fields&SortAddresses != 0 {
			r.Envelope = new(Envelope)
			if err := decodeEnvelope(env, r.Envelope); err != nil {
				return nil, fmt.Errorf("store: read sort data of uid %d: envelope: %w", r.UID, err)
			}
		}
		if !have {
			missing, bodies = append(missing, len(out)), append(bodies, bodyID)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr("read sort data", err)
	}
	rows.Close()
	// A body stored by a path that did not add its sort keys (none should): computed from
	// the stored envelope and header, as at delivery.
	for i, idx := range missing {
		k, err := s.readSortKeys(ctx, bodies[i])
		if err != nil {
			return nil, fmt.Errorf("store: read sort data of uid %d: %w", out[idx].UID, err)
		}
		o := &out[idx]
		o.SentDate = time.Time{}
		if k.sentDate.Valid {
			o.SentDate = time.Unix(k.sentDate.Int64, 0).UTC()
		}
		if text {
			o.Subject = k.subject
		}
		if thread {
			o.MessageID, o.InReplyTo, o.References = k.messageID, k.inReplyTo, k.refs
		}
	}
	return out, nil
}

// readSortKeys computes the sort keys of a stored body from its envelope and header.
func (s *Store) readSortKeys(ctx context.Context, bodyID int64) (sortKeys, error) {
	var env []byte
	var header string
	if err := s.readers.QueryRowContext(ctx, `SELECT envelope, header FROM bodies WHERE id = ?`, bodyID).Scan(&env, &header); err != nil {
		return sortKeys{}, wrapErr(fmt.Sprintf("read body %d", bodyID), err)
	}
	var e Envelope
	if err := decodeEnvelope(env, &e); err != nil {
		return sortKeys{}, fmt.Errorf("body %d: envelope: %w", bodyID, err)
	}
	return sortKeysOf(&e, header), nil
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
