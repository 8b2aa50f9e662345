package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Importing mail from another server while keeping its UIDs (`letterbox import` of a
// Dovecot Maildir). Clients remember UIDVALIDITY and UIDs (IMAP) and UIDLs made of them
// (POP3); a migration that keeps all three lets no client download its mail twice.
//
// The rules that keep the store's UID promises:
//
//   - A mailbox takes a given UIDVALIDITY only when it is new, or when it exists but has
//     never held a message (uid_next 1: the folders every account gets, INBOX). No client
//     can have cached a UID of such a mailbox, so changing its UIDVALIDITY costs nothing.
//     The account's last_uidvalidity is raised to it, so that mailboxes created later still
//     get a UIDVALIDITY above every one the account has had.
//   - A mailbox that has held messages keeps its UIDVALIDITY. Importing into it with another
//     UIDVALIDITY is refused (ErrUIDValidityMismatch): its UIDs and the imported ones would
//     be two numberings in one mailbox. With the same UIDVALIDITY (an import run again after
//     an interruption) messages below its uid_next are taken as already imported and
//     skipped, so UIDs still only grow and nothing is stored twice.
//   - Messages go in in ascending UID order, in batches of short write transactions like
//     any delivery (quota checked, body stored once, change-log rows, counters by trigger),
//     so that a running server is never held up for long.

// ErrUIDValidityMismatch is returned by ImportMailbox when the mailbox exists, has held
// messages, and has another UIDVALIDITY than the one to import.
var ErrUIDValidityMismatch = errors.New("store: mailbox has held messages under another UIDVALIDITY")

// ImportMailbox makes mailbox name ready to receive messages with their own UIDs under
// uidValidity (see the rules above): it creates it with that UIDVALIDITY, or adopts an
// existing one that never held a message, or accepts one with the same UIDVALIDITY.
// uidValidity 0 means any: a new mailbox gets a fresh one and an existing one is taken as
// it is.
func (s *Store) ImportMailbox(ctx context.Context, accountID int64, name string, uidValidity uint32) (Mailbox, error) {
	var m Mailbox
	err := s.write(ctx, fmt.Sprintf("import mailbox %q", name), func(wt *writeTx) error {
		var err error
		m, err = wt.mailboxByName(accountID, name)
		switch {
		case errors.Is(err, ErrNoSuchMailbox):
			m, err = wt.createMailbox(accountID, name, "")
			if err != nil {
				return err
			}
			// Imported folders are subscribed (docs/migration.md): the mail was in use.
			if _, err := wt.exec(`INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)`, accountID, m.Name); err != nil {
				return err
			}
			if uidValidity == 0 {
				return nil
			}
			return wt.adoptUIDValidity(&m, uidValidity)
		case err != nil:
			return err
		case uidValidity == 0 || m.UIDValidity == uidValidity:
			return nil
		case m.UIDNext == 1:
			return wt.adoptUIDValidity(&m, uidValidity)
		default:
			return fmt.Errorf("mailbox %q: UIDVALIDITY %d, %d to import: %w", m.Name, m.UIDValidity, uidValidity, ErrUIDValidityMismatch)
		}
	})
	return m, err
}

// adoptUIDValidity gives a mailbox that has never held a message the UIDVALIDITY uv.
func (wt *writeTx) adoptUIDValidity(m *Mailbox, uv uint32) error {
	if _, err := wt.exec(`UPDATE mailboxes SET uidvalidity = ? WHERE id = ? AND uid_next = 1`, uv, m.ID); err != nil {
		return err
	}
	if _, err := wt.exec(`UPDATE accounts SET last_uidvalidity = max(last_uidvalidity, ?) WHERE id = ?`, uv, m.AccountID); err != nil {
		return err
	}
	m.UIDValidity = uv
	return nil
}

// ImportedMessage is one message for ImportMessages, with the UID it keeps.
type ImportedMessage struct {
	UID          uint32
	Message      *Spooled  // from Spool; the caller closes it
	Flags        []string  // flags and keywords
	InternalDate time.Time // zero means now
}

// ImportResult counts what ImportMessages did.
type ImportResult struct {
	Imported int // stored with their UIDs
	Skipped  int // below the mailbox's uid_next: imported before
}

// ImportMessages stores messages with their own UIDs in one write transaction. UIDs must
// ascend; those below the mailbox's uid_next are skipped (imported by an earlier run), so
// an interrupted import can simply be run again. The mailbox's uid_next ends above the last
// UID stored. Errors: ErrNoSuchMailbox, ErrOverQuota, ErrTemporary.
func (s *Store) ImportMessages(ctx context.Context, mailboxID int64, msgs []ImportedMessage) (ImportResult, error) {
	var res ImportResult
	err := s.write(ctx, "import messages", func(wt *writeTx) error {
		res = ImportResult{}
		m, err := wt.mailboxByID(mailboxID)
		if err != nil {
			return err
		}
		next := int64(m.UIDNext)
		for _, msg := range msgs {
			if msg.UID == 0 {
				return fmt.Errorf("mailbox %q: import of UID 0", m.Name)
			}
			if int64(msg.UID) < next {
				res.Skipped++
				continue
			}
			if err := wt.checkQuota(m.AccountID, msg.Message.size, 1); err != nil {
				return err
			}
			bodyID, err := wt.spooledBody(msg.Message, nil, msg.Message.size)
			if err != nil {
				return err
			}
			date := msg.InternalDate
			if date.IsZero() {
				date = wt.now()
			}
			unix, tz := splitDate(date)
			if _, _, err := wt.insertMessage(m, msg.UID, bodyID, parseFlags(msg.Flags), unix, tz, msg.Message.size); err != nil {
				return err
			}
			next = int64(msg.UID) + 1
			res.Imported++
		}
		if next != int64(m.UIDNext) {
			return wt.setUIDNext(m, next)
		}
		return nil
	})
	return res, err
}

// RaiseUIDNext raises a mailbox's uid_next to uidNext (never lowers it): after an import,
// the next UID the old server would have given, so that UIDs it gave to messages expunged
// since are never given again (RFC 3501 §2.3.1.1).
func (s *Store) RaiseUIDNext(ctx context.Context, mailboxID int64, uidNext uint32) error {
	return s.write(ctx, "raise uid_next", func(wt *writeTx) error {
		m, err := wt.mailboxByID(mailboxID)
		if err != nil {
			return err
		}
		if uidNext <= m.UIDNext {
			return nil
		}
		return wt.setUIDNext(m, int64(uidNext))
	})
}
