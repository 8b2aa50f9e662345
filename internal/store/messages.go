package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
)

// msgRow is a messages row as the write paths need it.
type msgRow struct {
	id, bodyID   int64
	uid          uint32
	flags        flagSet
	date, tz     int64
	size, modseq int64
}

const messageColumns = `id, mailbox_id, uid, sysflags, keywords, internal_date, internal_tz, size, modseq, body_id, save_date, thread_id`

func scanMessage(row rowScanner, extra ...any) (Message, error) {
	return newMessageScan(extra...).scan(row)
}

// messageScan scans messages rows (messageColumns, then extra) one after the other into the
// same destinations: a listing of many rows then allocates per row only what it returns,
// not the dozen destinations Scan needs (a FETCH 1:* of 10,000 messages scanned that many
// rows). Scan writes each extra destination afresh for every row.
type messageScan struct {
	m             Message
	sys           int
	keywords      string
	date, tz      int64
	saved, thread sql.NullInt64
	dest          []any
}

func newMessageScan(extra ...any) *messageScan {
	ms := &messageScan{}
	ms.dest = append([]any{&ms.m.ID, &ms.m.MailboxID, &ms.m.UID, &ms.sys, &ms.keywords, &ms.date, &ms.tz,
		&ms.m.Size, &ms.m.ModSeq, &ms.m.BodyID, &ms.saved, &ms.thread}, extra...)
	return ms
}

func (ms *messageScan) scan(row rowScanner) (Message, error) {
	if err := row.Scan(ms.dest...); err != nil {
		return Message{}, err
	}
	m := ms.m
	m.Flags = decodeFlags(ms.sys, ms.keywords).list()
	m.InternalDate = internalDate(ms.date, ms.tz)
	m.SaveDate = time.Time{}
	if ms.saved.Valid {
		m.SaveDate = time.Unix(ms.saved.Int64, 0)
	}
	m.ThreadRoot = ms.thread.Int64 // 0 (NULL): stored before schema 7
	return m, nil
}

func internalDate(unix, tz int64) time.Time {
	return time.Unix(unix, 0).In(mailmsg.FixedZone(int(tz)))
}

func splitDate(t time.Time) (unix, tz int64) {
	_, off := t.Zone()
	return t.Unix(), int64(off)
}

// uidRangeClause turns ranges into an SQL condition on column uid with its arguments. Past a
// few dozen ranges (a client's long sequence set) it asks for the covering range instead and
// returns keep, the exact filter to apply to the rows it yields.
func uidRangeClause(ranges []UIDRange) (cond string, args []any, keep func(uint32) bool) {
	if len(ranges) == 0 {
		return "1 = 1", nil, nil
	}
	norm := make([]UIDRange, len(ranges))
	for i, r := range ranges {
		if r.Stop == 0 {
			r.Stop = math.MaxUint32
		}
		if r.Start > r.Stop {
			r.Start, r.Stop = r.Stop, r.Start
		}
		norm[i] = r
	}
	if len(norm) <= 50 {
		parts := make([]string, len(norm))
		for i, r := range norm {
			parts[i] = "uid BETWEEN ? AND ?"
			args = append(args, r.Start, r.Stop)
		}
		return "(" + strings.Join(parts, " OR ") + ")", args, nil
	}
	lo, hi := norm[0].Start, norm[0].Stop
	for _, r := range norm[1:] {
		lo, hi = min(lo, r.Start), max(hi, r.Stop)
	}
	keep = func(uid uint32) bool {
		return slices.ContainsFunc(norm, func(r UIDRange) bool { return r.Start <= uid && uid <= r.Stop })
	}
	return "uid BETWEEN ? AND ?", []any{lo, hi}, keep
}

// Messages lists the messages of a mailbox whose UIDs fall in ranges (all when ranges is
// empty), in ascending UID order. An unknown mailbox has no messages.
func (s *Store) Messages(ctx context.Context, mailboxID int64, ranges ...UIDRange) ([]Message, error) {
	cond, args, keep := uidRangeClause(ranges)
	rows, err := s.readers.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages WHERE mailbox_id = ? AND `+cond+` ORDER BY uid`,
		append([]any{mailboxID}, args...)...)
	if err != nil {
		return nil, wrapErr("list messages", err)
	}
	defer rows.Close()
	var out []Message
	scan := newMessageScan()
	for rows.Next() {
		m, err := scan.scan(rows)
		if err != nil {
			return nil, wrapErr("list messages", err)
		}
		if keep == nil || keep(m.UID) {
			out = append(out, m)
		}
	}
	return out, wrapErr("list messages", rows.Err())
}

// Metadata returns the delivery-time metadata of the messages in ranges (all when empty),
// in ascending UID order.
func (s *Store) Metadata(ctx context.Context, mailboxID int64, ranges ...UIDRange) ([]Metadata, error) {
	return s.MetadataOf(ctx, mailboxID, MetadataParts{Envelope: true, Structure: true}, ranges...)
}

// MetadataParts says which decoded parts of Metadata a reader needs: each is stored
// encoded and costs a decode per message, which a listing that shows neither (or only the
// envelope) should not pay.
type MetadataParts struct {
	Envelope  bool // Metadata.Envelope
	Structure bool // Metadata.Structure (BODYSTRUCTURE, and the offsets of MIME parts)
	// Preview fills Metadata.Preview (RFC 8970). A message stored before previews were
	// kept has its preview computed now, from the stored message, and kept (previewfill.go).
	Preview bool
}

// MetadataOf is Metadata with only the parts asked for decoded; the others are left zero.
func (s *Store) MetadataOf(ctx context.Context, mailboxID int64, parts MetadataParts, ranges ...UIDRange) ([]Metadata, error) {
	cond, args, keep := uidRangeClause(ranges)
	envCol, structCol, previewCol := "NULL", "NULL", "''"
	if parts.Envelope {
		envCol = "b.envelope"
	}
	if parts.Structure {
		structCol = "b.structure"
	}
	if parts.Preview {
		previewCol = "b.preview"
	}
	rows, err := s.readers.QueryContext(ctx, `SELECT `+prefixColumns("m.", messageColumns)+`, b.header_size, b.lines, `+envCol+`, `+structCol+`, `+previewCol+`
		FROM messages m JOIN bodies b ON b.id = m.body_id
		WHERE m.mailbox_id = ? AND `+strings.ReplaceAll(cond, "uid", "m.uid")+` ORDER BY m.uid`,
		append([]any{mailboxID}, args...)...)
	if err != nil {
		return nil, wrapErr("read metadata", err)
	}
	defer rows.Close()
	var out []Metadata
	var env, structure sql.RawBytes
	var missing []int // indexes in out of messages whose preview is still to compute
	var headerSize, lines int64
	var preview sql.NullString
	scan := newMessageScan(&headerSize, &lines, &env, &structure, &preview)
	for rows.Next() {
		var md Metadata
		md.Message, err = scan.scan(rows)
		if err != nil {
			return nil, wrapErr("read metadata", err)
		}
		md.HeaderSize, md.Lines = headerSize, lines
		if keep != nil && !keep(md.UID) {
			continue
		}
		md.Preview = preview.String
		if parts.Preview && !preview.Valid {
			missing = append(missing, len(out))
		}
		if parts.Envelope {
			if err := decodeEnvelope(env, &md.Envelope); err != nil {
				return nil, fmt.Errorf("store: read metadata of body %d: envelope: %w", md.BodyID, err)
			}
		}
		if parts.Structure {
			if err := json.Unmarshal(structure, &md.Structure); err != nil {
				return nil, fmt.Errorf("store: read metadata of body %d: structure: %w", md.BodyID, err)
			}
		}
		out = append(out, md)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr("read metadata", err)
	}
	rows.Close()
	if len(missing) > 0 {
		if err := s.fillPreviews(ctx, out, missing); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SearchData is what SEARCH needs beyond Metadata, kept since delivery: the raw top-level
// header (unfolded by the caller as needed) and the decoded text of the message's text/*
// parts (UTF-8, bounded to SearchTextMax octets).
type SearchData struct {
	UID    uint32
	Header string
	Text   string
}

// SearchTextMax bounds SearchData's Header and Text, each: what SEARCH sees of a message.
const SearchTextMax = mailmsg.MaxTextBytes

// SearchData returns the searchable text of the messages in ranges (all when empty), in
// ascending UID order.
func (s *Store) SearchData(ctx context.Context, mailboxID int64, ranges ...UIDRange) ([]SearchData, error) {
	cond, args, keep := uidRangeClause(ranges)
	rows, err := s.readers.QueryContext(ctx, `SELECT m.uid, b.header, b.body_text
		FROM messages m JOIN bodies b ON b.id = m.body_id
		WHERE m.mailbox_id = ? AND `+strings.ReplaceAll(cond, "uid", "m.uid")+` ORDER BY m.uid`,
		append([]any{mailboxID}, args...)...)
	if err != nil {
		return nil, wrapErr("read search data", err)
	}
	defer rows.Close()
	var out []SearchData
	for rows.Next() {
		var d SearchData
		if err := rows.Scan(&d.UID, &d.Header, &d.Text); err != nil {
			return nil, wrapErr("read search data", err)
		}
		if keep == nil || keep(d.UID) {
			out = append(out, d)
		}
	}
	return out, wrapErr("read search data", rows.Err())
}

func prefixColumns(prefix, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, p := range parts {
		parts[i] = prefix + p
	}
	return strings.Join(parts, ", ")
}

// --- writes ---

type selection int

const (
	selectUIDs        selection = iota // the given UIDs
	selectAll                          // every message
	selectDeleted                      // the messages flagged \Deleted
	selectDeletedUIDs                  // those of the given UIDs that are flagged \Deleted
)

// selectMessages reads the rows a write works on, in ascending UID order. UIDs that do not
// exist are ignored.
func (wt *writeTx) selectMessages(mailboxID int64, sel selection, uids []uint32) ([]msgRow, error) {
	query := `SELECT id, uid, body_id, sysflags, keywords, internal_date, internal_tz, size, modseq FROM messages WHERE mailbox_id = ?`
	args := []any{mailboxID}
	var want map[uint32]bool
	switch sel {
	case selectDeleted:
		query += ` AND sysflags & ? != 0`
		args = append(args, bitDeleted)
	case selectUIDs, selectDeletedUIDs:
		if sel == selectDeletedUIDs {
			query += ` AND sysflags & ? != 0`
			args = append(args, bitDeleted)
		}
		if len(uids) == 0 {
			return nil, nil
		}
		// The rows between the lowest and highest UID asked for, filtered here: one indexed
		// range scan instead of an IN list of unbounded length.
		want = make(map[uint32]bool, len(uids))
		lo, hi := uids[0], uids[0]
		for _, u := range uids {
			want[u] = true
			lo, hi = min(lo, u), max(hi, u)
		}
		query += ` AND uid BETWEEN ? AND ?`
		args = append(args, lo, hi)
	}
	rows, err := wt.tx.QueryContext(wt.ctx, query+` ORDER BY uid`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []msgRow
	for rows.Next() {
		var r msgRow
		var sys int
		var keywords string
		if err := rows.Scan(&r.id, &r.uid, &r.bodyID, &sys, &keywords, &r.date, &r.tz, &r.size, &r.modseq); err != nil {
			return nil, err
		}
		if want != nil && !want[r.uid] {
			continue
		}
		r.flags = decodeFlags(sys, keywords)
		out = append(out, r)
	}
	return out, rows.Err()
}

// insertMessage adds a message row with the mailbox's next UID and its ChangeAppend row.
// The caller stores the new uid_next (once, after all its inserts).
func (wt *writeTx) insertMessage(m Mailbox, uid uint32, bodyID int64, flags flagSet, date, tz, size int64) (id, modseq int64, err error) {
	modseq, err = wt.logChange(m.AccountID, m.ID, uid, ChangeAppend)
	if err != nil {
		return 0, 0, err
	}
	thread, err := wt.threadOf(m.AccountID, bodyID) // threads.go
	if err != nil {
		return 0, 0, err
	}
	// RFC 8514 §3: the save date is when the message was saved into this mailbox, so a
	// COPY or MOVE gets its own, unlike INTERNALDATE.
	res, err := wt.exec(`INSERT INTO messages (mailbox_id, uid, body_id, sysflags, keywords, internal_date, internal_tz, size, modseq, save_date, thread_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, m.ID, uid, bodyID, flags.sys, flags.keywordsColumn(), date, tz, size, modseq, wt.now().Unix(), thread)
	if err != nil {
		return 0, 0, fmt.Errorf("insert message: %w", err)
	}
	id, err = res.LastInsertId()
	return id, modseq, err
}

func (wt *writeTx) setUIDNext(m Mailbox, next int64) error {
	if next > math.MaxUint32 {
		return fmt.Errorf("mailbox %q: UIDs exhausted", m.Name)
	}
	_, err := wt.exec(`UPDATE mailboxes SET uid_next = ? WHERE id = ?`, next, m.ID)
	return err
}

// checkQuota refuses adding count messages of size octets in all to an account over its
// quota, in bytes or in messages. What fits within a quota is accepted; so is what crosses
// it by no more than the grace (Options.QuotaGrace, QuotaMessageGrace) while the account
// is still below it.
func (wt *writeTx) checkQuota(accountID, size, count int64) error {
	var quota, used, quotaMsgs, msgs int64
	err := wt.queryRow(`SELECT quota_bytes, used_bytes, quota_messages, message_count FROM accounts WHERE id = ?`, accountID).
		Scan(&quota, &used, &quotaMsgs, &msgs)
	if err != nil {
		return fmt.Errorf("account %d: %w", accountID, noRows(err, ErrNoSuchAccount))
	}
	if err := withinQuota(quota, used, size, wt.s.byteGrace); err != nil {
		return fmt.Errorf("account %d: bytes: %w", accountID, err)
	}
	if err := withinQuota(quotaMsgs, msgs, count, wt.s.messageGrace); err != nil {
		return fmt.Errorf("account %d: messages: %w", accountID, err)
	}
	return nil
}

// withinQuota says whether adding more to used stays within quota (0: none), or crosses
// it by no more than grace(quota) from below.
func withinQuota(quota, used, more int64, grace func(int64) int64) error {
	if quota <= 0 || used+more <= quota {
		return nil
	}
	var g int64
	if grace != nil {
		g = max(0, grace(quota))
	}
	if used < quota && used+more <= quota+g {
		return nil
	}
	return fmt.Errorf("%d of %d used (grace %d), %d more: %w", used, quota, g, more, ErrOverQuota)
}

func (wt *writeTx) setFlags(mailboxID int64, uids []uint32, op FlagOp, flags []string) ([]FlagUpdate, error) {
	out, _, err := wt.setFlagsIf(mailboxID, uids, op, flags, unconditional)
	return out, err
}

// unconditional is the unchangedSince of a flag change without UNCHANGEDSINCE.
const unconditional = -1

// setFlagsIf changes the flags of the messages with the given UIDs. With unchangedSince
// >= 0 (RFC 7162 §3.1.3, UNCHANGEDSINCE) a message whose modseq is above it is left alone
// and its UID returned in modified, and every other message is reported in out, changed
// or not (the client is owed a FETCH with its MODSEQ for each). Unconditionally, out has
// the messages whose flags changed (all of them for FlagsReplace). Either way, a message
// whose flags stay as they were keeps its modseq.
func (wt *writeTx) setFlagsIf(mailboxID int64, uids []uint32, op FlagOp, flags []string, unchangedSince int64) (out []FlagUpdate, modified []uint32, err error) {
	m, err := wt.mailboxByID(mailboxID)
	if err != nil {
		return nil, nil, err
	}
	rows, err := wt.selectMessages(mailboxID, selectUIDs, uids)
	if err != nil {
		return nil, nil, err
	}
	change := parseFlags(flags)
	for _, r := range rows {
		// RFC 7162 §3.1.3: the test is on the message's modseq alone, whatever the
		// STORE would do; UNCHANGEDSINCE 0 fails for every message (modseqs start at 1).
		if unchangedSince >= 0 && r.modseq > unchangedSince {
			modified = append(modified, r.uid)
			continue
		}
		nf := r.flags.apply(op, change)
		if nf.equal(r.flags) {
			if op == FlagsReplace || unchangedSince >= 0 {
				out = append(out, FlagUpdate{UID: r.uid, Flags: nf.list(), ModSeq: r.modseq})
			}
			continue
		}
		modseq, err := wt.logChange(m.AccountID, m.ID, r.uid, ChangeFlags)
		if err != nil {
			return nil, nil, err
		}
		if _, err := wt.exec(`UPDATE messages SET sysflags = ?, keywords = ?, modseq = ? WHERE id = ?`,
			nf.sys, nf.keywordsColumn(), modseq, r.id); err != nil {
			return nil, nil, err
		}
		out = append(out, FlagUpdate{UID: r.uid, Flags: nf.list(), ModSeq: modseq, Changed: true})
	}
	return out, modified, nil
}

// expungeRows deletes messages, leaving a ChangeExpunge tombstone for each. The triggers
// keep the account's counters and delete bodies nobody refers to any more.
func (wt *writeTx) expungeRows(m Mailbox, rows []msgRow) error {
	for _, r := range rows {
		if _, err := wt.logChange(m.AccountID, m.ID, r.uid, ChangeExpunge); err != nil {
			return err
		}
		if _, err := wt.exec(`DELETE FROM messages WHERE id = ?`, r.id); err != nil {
			return fmt.Errorf("delete message: %w", err)
		}
	}
	return nil
}

func (wt *writeTx) expunge(mailboxID int64, uids []uint32, sel selection) ([]uint32, error) {
	m, err := wt.mailboxByID(mailboxID)
	if err != nil {
		return nil, err
	}
	if uids == nil {
		sel = selectDeleted
	}
	rows, err := wt.selectMessages(mailboxID, sel, uids)
	if err != nil {
		return nil, err
	}
	if err := wt.expungeRows(m, rows); err != nil {
		return nil, err
	}
	out := make([]uint32, len(rows))
	for i, r := range rows {
		out[i] = r.uid
	}
	return out, nil
}

// copyRows adds rows (of src) to dst with consecutive new UIDs, sharing their bodies.
func (wt *writeTx) copyRows(src Mailbox, rows []msgRow, dst Mailbox) ([]UIDPair, error) {
	if src.AccountID != dst.AccountID {
		return nil, fmt.Errorf("copy between accounts: %w", ErrNoSuchMailbox)
	}
	next := int64(dst.UIDNext)
	pairs := make([]UIDPair, 0, len(rows))
	for _, r := range rows {
		if next > math.MaxUint32 {
			return nil, fmt.Errorf("mailbox %q: UIDs exhausted", dst.Name)
		}
		if _, _, err := wt.insertMessage(dst, uint32(next), r.bodyID, r.flags, r.date, r.tz, r.size); err != nil {
			return nil, err
		}
		pairs = append(pairs, UIDPair{Src: r.uid, Dst: uint32(next)})
		next++
	}
	if len(rows) > 0 {
		if err := wt.setUIDNext(dst, next); err != nil {
			return nil, err
		}
	}
	return pairs, nil
}

func (wt *writeTx) copyOrMove(srcID int64, uids []uint32, dstID int64, move bool) ([]UIDPair, error) {
	src, err := wt.mailboxByID(srcID)
	if err != nil {
		return nil, err
	}
	dst, err := wt.mailboxByID(dstID)
	if err != nil {
		return nil, err
	}
	rows, err := wt.selectMessages(srcID, selectUIDs, uids)
	if err != nil {
		return nil, err
	}
	if !move {
		var size int64
		for _, r := range rows {
			size += r.size
		}
		if err := wt.checkQuota(src.AccountID, size, int64(len(rows))); err != nil {
			return nil, err
		}
	}
	pairs, err := wt.copyRows(src, rows, dst)
	if err != nil {
		return nil, err
	}
	if move {
		if err := wt.expungeRows(src, rows); err != nil {
			return nil, err
		}
	}
	return pairs, nil
}

// SetFlags changes the flags of the messages with the given UIDs and returns their new
// flags (only for messages whose flags actually changed, unless op is FlagsReplace).
func (s *Store) SetFlags(ctx context.Context, mailboxID int64, uids []uint32, op FlagOp, flags []string) ([]FlagUpdate, error) {
	var out []FlagUpdate
	err := s.write(ctx, "set flags", func(wt *writeTx) error {
		var err error
		out, err = wt.setFlags(mailboxID, uids, op, flags)
		return err
	})
	return out, err
}

// Expunge removes the messages with the given UIDs; a nil uids removes every message
// flagged \Deleted. It returns the UIDs removed, ascending.
func (s *Store) Expunge(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error) {
	var out []uint32
	err := s.write(ctx, "expunge", func(wt *writeTx) error {
		var err error
		out, err = wt.expunge(mailboxID, uids, selectUIDs)
		return err
	})
	return out, err
}

// ExpungeDeleted removes those of the messages with the given UIDs that are flagged
// \Deleted at the moment of the transaction (IMAP UID EXPUNGE, RFC 4315 §2.1): a message
// whose \Deleted another session cleared meanwhile stays. A nil uids is Expunge(nil).
// It returns the UIDs removed, ascending.
func (s *Store) ExpungeDeleted(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error) {
	var out []uint32
	err := s.write(ctx, "expunge", func(wt *writeTx) error {
		var err error
		out, err = wt.expunge(mailboxID, uids, selectDeletedUIDs)
		return err
	})
	return out, err
}

// Copy copies messages (flags and INTERNALDATE kept) into another mailbox of the same
// account, sharing the stored raw message. The pairs are in ascending source UID order;
// the new UIDs are consecutive. Errors: ErrNoSuchMailbox, ErrOverQuota.
func (s *Store) Copy(ctx context.Context, srcMailboxID int64, uids []uint32, dstMailboxID int64) ([]UIDPair, error) {
	var out []UIDPair
	err := s.write(ctx, "copy", func(wt *writeTx) error {
		var err error
		out, err = wt.copyOrMove(srcMailboxID, uids, dstMailboxID, false)
		return err
	})
	return out, err
}

// Move moves messages into another mailbox in one transaction (copy, then expunge).
func (s *Store) Move(ctx context.Context, srcMailboxID int64, uids []uint32, dstMailboxID int64) ([]UIDPair, error) {
	var out []UIDPair
	err := s.write(ctx, "move", func(wt *writeTx) error {
		var err error
		out, err = wt.copyOrMove(srcMailboxID, uids, dstMailboxID, true)
		return err
	})
	return out, err
}
