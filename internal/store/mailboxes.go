package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// mailboxColumns are what scanMailbox reads, from mailboxes; Subscribed is whether the
// subscriptions table has the mailbox's name (schema 5).
const mailboxColumns = `id, account_id, name, special_use, uidvalidity, uid_next, recent_uid, modseq,
	EXISTS (SELECT 1 FROM subscriptions WHERE subscriptions.account_id = mailboxes.account_id AND subscriptions.name = mailboxes.name)`

func scanMailbox(row rowScanner) (Mailbox, error) {
	var m Mailbox
	err := row.Scan(&m.ID, &m.AccountID, &m.Name, &m.SpecialUse, &m.UIDValidity, &m.UIDNext, &m.RecentUID, &m.ModSeq, &m.Subscribed)
	return m, err
}

// normalizeMailboxName spells INBOX in upper case (it is case-insensitive, RFC 3501 §5.1)
// and drops a trailing delimiter ("Foo/" declares a parent, which is just "Foo" here).
func normalizeMailboxName(name string) (string, error) {
	name = strings.TrimSuffix(name, "/")
	if equalFold(name, "INBOX") {
		return "INBOX", nil
	}
	if name == "" || !utf8.ValidString(name) || strings.HasPrefix(name, "/") || strings.Contains(name, "//") ||
		strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("invalid mailbox name %q", name)
	}
	return name, nil
}

// Mailboxes lists an account's mailboxes, by name.
func (s *Store) Mailboxes(ctx context.Context, accountID int64) ([]Mailbox, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT `+mailboxColumns+` FROM mailboxes WHERE account_id = ? ORDER BY name`, accountID)
	if err != nil {
		return nil, wrapErr("list mailboxes", err)
	}
	defer rows.Close()
	var out []Mailbox
	for rows.Next() {
		m, err := scanMailbox(rows)
		if err != nil {
			return nil, wrapErr("list mailboxes", err)
		}
		out = append(out, m)
	}
	return out, wrapErr("list mailboxes", rows.Err())
}

// InboxFirst orders mailboxes, as Mailboxes returns them, the way IMAP LIST shows them:
// INBOX first, then the others in name order. The test API and the inspector list them so.
func InboxFirst(mbs []Mailbox) {
	slices.SortStableFunc(mbs, func(x, y Mailbox) int {
		return cmp.Compare(inboxRank(x.Name), inboxRank(y.Name))
	})
}

// inboxRank is 0 for INBOX and 1 for every other mailbox.
func inboxRank(name string) int {
	if name == "INBOX" {
		return 0
	}
	return 1
}

// MailboxByName finds a mailbox; "inbox" in any case is INBOX.
func (s *Store) MailboxByName(ctx context.Context, accountID int64, name string) (Mailbox, error) {
	n, err := normalizeMailboxName(name)
	if err != nil {
		return Mailbox{}, fmt.Errorf("store: mailbox %q: %w", name, ErrNoSuchMailbox)
	}
	m, err := scanMailbox(s.readers.QueryRowContext(ctx, `SELECT `+mailboxColumns+` FROM mailboxes WHERE account_id = ? AND name = ?`, accountID, n))
	if errors.Is(err, sql.ErrNoRows) {
		return Mailbox{}, fmt.Errorf("store: mailbox %q: %w", name, ErrNoSuchMailbox)
	}
	if err != nil {
		return Mailbox{}, wrapErr("read mailbox "+n, err)
	}
	return m, nil
}

// MailboxByID finds a mailbox by its id.
func (s *Store) MailboxByID(ctx context.Context, mailboxID int64) (Mailbox, error) {
	m, err := scanMailbox(s.readers.QueryRowContext(ctx, `SELECT `+mailboxColumns+` FROM mailboxes WHERE id = ?`, mailboxID))
	if errors.Is(err, sql.ErrNoRows) {
		return Mailbox{}, fmt.Errorf("store: mailbox %d: %w", mailboxID, ErrNoSuchMailbox)
	}
	if err != nil {
		return Mailbox{}, wrapErr("read mailbox", err)
	}
	return m, nil
}

func (wt *writeTx) mailboxByName(accountID int64, name string) (Mailbox, error) {
	n, err := normalizeMailboxName(name)
	if err != nil {
		return Mailbox{}, fmt.Errorf("mailbox %q: %w", name, ErrNoSuchMailbox)
	}
	m, err := scanMailbox(wt.queryRow(`SELECT `+mailboxColumns+` FROM mailboxes WHERE account_id = ? AND name = ?`, accountID, n))
	if errors.Is(err, sql.ErrNoRows) {
		return Mailbox{}, fmt.Errorf("mailbox %q: %w", name, ErrNoSuchMailbox)
	}
	return m, err
}

func (wt *writeTx) mailboxByID(id int64) (Mailbox, error) {
	m, err := scanMailbox(wt.queryRow(`SELECT `+mailboxColumns+` FROM mailboxes WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Mailbox{}, fmt.Errorf("mailbox %d: %w", id, ErrNoSuchMailbox)
	}
	return m, err
}

// createMailbox inserts a mailbox with a fresh UIDVALIDITY: the clock's seconds (or what
// Options.UIDValidity proposes), but always above every UIDVALIDITY the account has handed
// out, so that a mailbox deleted and created again (even within the same second) gets a new
// one.
func (wt *writeTx) createMailbox(accountID int64, name, specialUse string) (Mailbox, error) {
	name, err := normalizeMailboxName(name)
	if err != nil {
		return Mailbox{}, err
	}
	var exists int
	err = wt.queryRow(`SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?`, accountID, name).Scan(&exists)
	if err == nil {
		return Mailbox{}, fmt.Errorf("mailbox %q: %w", name, ErrMailboxExists)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return Mailbox{}, err
	}
	var last int64
	err = wt.queryRow(`SELECT last_uidvalidity FROM accounts WHERE id = ?`, accountID).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return Mailbox{}, ErrNoSuchAccount
	} else if err != nil {
		return Mailbox{}, err
	}
	var uv int64
	if wt.s.uidValidity != nil && last < math.MaxUint32 {
		uv = max(last+1, int64(wt.s.uidValidity(uint32(last))))
	} else {
		uv = max(last+1, wt.now().Unix())
	}
	if uv > math.MaxUint32 {
		return Mailbox{}, fmt.Errorf("account %d: UIDVALIDITY exhausted", accountID)
	}
	res, err := wt.exec(`INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)`,
		accountID, name, specialUse, uv)
	if err != nil {
		return Mailbox{}, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return Mailbox{}, err
	}
	if _, err := wt.exec(`UPDATE accounts SET last_uidvalidity = ? WHERE id = ?`, uv, accountID); err != nil {
		return Mailbox{}, err
	}
	if _, err := wt.logChange(accountID, id, 0, ChangeMailboxCreate); err != nil {
		return Mailbox{}, err
	}
	// A name may have been subscribed before its mailbox existed (RFC 3501 §6.3.6).
	var subscribed bool
	if err := wt.queryRow(`SELECT EXISTS (SELECT 1 FROM subscriptions WHERE account_id = ? AND name = ?)`, accountID, name).Scan(&subscribed); err != nil {
		return Mailbox{}, err
	}
	return Mailbox{ID: id, AccountID: accountID, Name: name, SpecialUse: specialUse,
		UIDValidity: uint32(uv), UIDNext: 1, ModSeq: wt.mboxMod[id], Subscribed: subscribed}, nil
}

// CreateMailbox creates a mailbox with a fresh UIDVALIDITY (ErrMailboxExists if present).
func (s *Store) CreateMailbox(ctx context.Context, accountID int64, name, specialUse string) (Mailbox, error) {
	var m Mailbox
	err := s.write(ctx, fmt.Sprintf("create mailbox %q", name), func(wt *writeTx) error {
		var err error
		m, err = wt.createMailbox(accountID, name, specialUse)
		return err
	})
	return m, err
}

// RenameMailbox renames a mailbox and its children (name/...). Renaming INBOX moves its
// messages into a new mailbox and leaves INBOX empty (RFC 3501 §6.3.5).
func (s *Store) RenameMailbox(ctx context.Context, accountID int64, from, to string) error {
	return s.write(ctx, fmt.Sprintf("rename mailbox %q to %q", from, to), func(wt *writeTx) error {
		src, err := wt.mailboxByName(accountID, from)
		if err != nil {
			return err
		}
		to, err := normalizeMailboxName(to)
		if err != nil {
			return err
		}
		if to == "INBOX" || to == src.Name {
			return fmt.Errorf("mailbox %q: %w", to, ErrMailboxExists)
		}
		if src.Name == "INBOX" {
			return wt.renameInbox(src, to)
		}
		if strings.HasPrefix(to, src.Name+"/") {
			return fmt.Errorf("cannot rename %q into itself: %w", src.Name, ErrMailboxProtected)
		}
		return wt.renameTree(src, to)
	})
}

// renameInbox moves every INBOX message (new UIDs) into a new mailbox; INBOX stays, and so
// do its children, as RFC 3501 asks.
func (wt *writeTx) renameInbox(inbox Mailbox, to string) error {
	dst, err := wt.createMailbox(inbox.AccountID, to, "")
	if err != nil {
		return err
	}
	rows, err := wt.selectMessages(inbox.ID, selectAll, nil)
	if err != nil {
		return err
	}
	if _, err := wt.copyRows(inbox, rows, dst); err != nil {
		return err
	}
	return wt.expungeRows(inbox, rows)
}

// renameTree renames src and every mailbox below it, keeping their UIDVALIDITY and messages.
func (wt *writeTx) renameTree(src Mailbox, to string) error {
	rows, err := wt.tx.QueryContext(wt.ctx, `SELECT id, name FROM mailboxes WHERE account_id = ?`, src.AccountID)
	if err != nil {
		return err
	}
	type rename struct {
		id       int64
		old, new string
	}
	var renames []rename
	existing := map[string]bool{}
	for rows.Next() {
		var r rename
		if err := rows.Scan(&r.id, &r.old); err != nil {
			rows.Close()
			return err
		}
		if r.old == src.Name || strings.HasPrefix(r.old, src.Name+"/") {
			r.new = to + r.old[len(src.Name):]
			renames = append(renames, r)
		} else {
			existing[r.old] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range renames {
		if existing[r.new] {
			return fmt.Errorf("mailbox %q: %w", r.new, ErrMailboxExists)
		}
	}
	for _, r := range renames {
		if _, err := wt.exec(`UPDATE mailboxes SET name = ? WHERE id = ?`, r.new, r.id); err != nil {
			return err
		}
		if _, err := wt.logChange(src.AccountID, r.id, 0, ChangeMailboxRename); err != nil {
			return err
		}
	}
	return nil
}

// DeleteMailbox deletes a mailbox and its messages. INBOX cannot be deleted.
func (s *Store) DeleteMailbox(ctx context.Context, accountID int64, name string) error {
	return s.write(ctx, fmt.Sprintf("delete mailbox %q", name), func(wt *writeTx) error {
		m, err := wt.mailboxByName(accountID, name)
		if err != nil {
			return err
		}
		if m.Name == "INBOX" {
			return fmt.Errorf("mailbox INBOX: %w", ErrMailboxProtected)
		}
		// Expunge first, so that every message leaves its tombstone and unshared bodies go.
		rows, err := wt.selectMessages(m.ID, selectAll, nil)
		if err != nil {
			return err
		}
		if err := wt.expungeRows(m, rows); err != nil {
			return err
		}
		if _, err := wt.exec(`DELETE FROM mailboxes WHERE id = ?`, m.ID); err != nil {
			return err
		}
		_, err = wt.logChange(accountID, m.ID, 0, ChangeMailboxDelete)
		return err
	})
}

// SetSubscribed subscribes or unsubscribes a name. RFC 3501 §6.3.6: a subscription is a
// name of its own, not a property of a mailbox: a name that names no mailbox (yet, or any
// more) can be subscribed, and deleting or renaming a mailbox leaves its subscription as
// it is. Only a name that no mailbox could have is refused (ErrNoSuchMailbox).
func (s *Store) SetSubscribed(ctx context.Context, accountID int64, name string, subscribed bool) error {
	n, err := normalizeMailboxName(name)
	if err != nil {
		return fmt.Errorf("store: mailbox %q: %w", name, ErrNoSuchMailbox)
	}
	return s.write(ctx, fmt.Sprintf("subscribe mailbox %q", n), func(wt *writeTx) error {
		if subscribed {
			_, err := wt.exec(`INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)`, accountID, n)
			return err
		}
		_, err := wt.exec(`DELETE FROM subscriptions WHERE account_id = ? AND name = ?`, accountID, n)
		return err
	})
}

// Subscriptions lists an account's subscribed names, sorted; some may name no mailbox.
func (s *Store) Subscriptions(ctx context.Context, accountID int64) ([]string, error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name`, accountID)
	if err != nil {
		return nil, wrapErr("list subscriptions", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, wrapErr("list subscriptions", err)
		}
		out = append(out, n)
	}
	return out, wrapErr("list subscriptions", rows.Err())
}

// ClaimRecent gives the caller \Recent (RFC 3501 §2.3.2) on the mailbox's messages with
// UIDs up to upTo that no one has claimed yet: it raises the mailbox's recent watermark to
// upTo and returns the watermark it found. The messages with UIDs in (from, upTo] are the
// caller's to show as \Recent; no other caller gets them. A read-write SELECT claims the
// messages it shows, and so does its session for the new messages it announces; EXAMINE
// claims nothing (it shows as recent what is above Mailbox.RecentUID).
func (s *Store) ClaimRecent(ctx context.Context, mailboxID int64, upTo uint32) (from uint32, err error) {
	// Most calls find the messages claimed already: every session of the account woken by
	// one delivery asks. The watermark only grows, so a value seen before is a lower
	// bound that answers them without a query (the 10,000 sessions in IDLE woken by one
	// delivery still cost two reads); else a read answers without queueing for the writer.
	if seen := s.recent.get(mailboxID); seen >= upTo {
		return seen, nil
	}
	if err := s.readers.QueryRowContext(ctx, `SELECT recent_uid FROM mailboxes WHERE id = ?`, mailboxID).Scan(&from); err == nil && from >= upTo {
		s.recent.raise(mailboxID, from)
		return from, nil
	}
	err = s.write(ctx, "claim recent", func(wt *writeTx) error {
		if err := wt.tx.QueryRowContext(wt.ctx, `SELECT recent_uid FROM mailboxes WHERE id = ?`, mailboxID).Scan(&from); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("mailbox %d: %w", mailboxID, ErrNoSuchMailbox)
			}
			return err
		}
		if upTo <= from {
			return nil
		}
		_, err := wt.exec(`UPDATE mailboxes SET recent_uid = ? WHERE id = ?`, upTo, mailboxID)
		return err
	})
	if err == nil {
		s.recent.raise(mailboxID, max(from, upTo))
	}
	return from, err
}

// recentMarks remembers, per mailbox, a value its \Recent watermark has reached: the
// watermark never falls (another process may raise it further), so it is a lower bound.
type recentMarks struct {
	mu sync.Mutex
	m  map[int64]uint32
}

func (r *recentMarks) get(mailboxID int64) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[mailboxID]
}

func (r *recentMarks) raise(mailboxID int64, uid uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[int64]uint32)
	}
	if uid > r.m[mailboxID] {
		r.m[mailboxID] = uid
	}
}

// Status counts a mailbox's messages.
func (s *Store) Status(ctx context.Context, mailboxID int64) (MailboxStatus, error) {
	// One read transaction: the mailbox row (UIDNEXT) and the counts are one snapshot.
	tx, err := s.readers.BeginTx(ctx, nil)
	if err != nil {
		return MailboxStatus{}, wrapErr("mailbox status", err)
	}
	defer tx.Rollback()
	m, err := scanMailbox(tx.QueryRowContext(ctx, `SELECT `+mailboxColumns+` FROM mailboxes WHERE id = ?`, mailboxID))
	if errors.Is(err, sql.ErrNoRows) {
		return MailboxStatus{}, fmt.Errorf("store: mailbox %d: %w", mailboxID, ErrNoSuchMailbox)
	} else if err != nil {
		return MailboxStatus{}, wrapErr("mailbox status", err)
	}
	st := MailboxStatus{Mailbox: m}
	err = tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(size), 0),
		coalesce(sum(sysflags & ? = 0), 0), coalesce(sum(sysflags & ? != 0), 0), coalesce(sum(uid > ?), 0),
		coalesce(sum(CASE WHEN sysflags & ? != 0 THEN size END), 0)
		FROM messages WHERE mailbox_id = ?`, bitSeen, bitDeleted, m.RecentUID, bitDeleted, mailboxID).
		Scan(&st.Messages, &st.Size, &st.Unseen, &st.Deleted, &st.Recent, &st.DeletedSize)
	if err != nil {
		return MailboxStatus{}, wrapErr("mailbox status", err)
	}
	return st, nil
}
