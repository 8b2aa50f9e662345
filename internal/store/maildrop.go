package store

import (
	"context"
	"fmt"
)

// MaildropCommit is what a POP3 session writes when it ends with QUIT (RFC 1939 §6, the
// UPDATE state): \Seen for the messages it retrieved and its deletions, by UID.
type MaildropCommit struct {
	// Seen are the UIDs that get \Seen.
	Seen []uint32
	// Deleted are the UIDs the session deleted. An empty list deletes nothing (it never
	// means "every \Deleted message", as Expunge's nil does).
	Deleted []uint32
	// DeletedFlag, when not empty, is the flag or keyword added to the deleted messages
	// instead of expunging them (\Deleted to leave them for IMAP, or a keyword that hides
	// them from POP3).
	DeletedFlag string
}

// CommitMaildrop writes c into the mailbox in one write transaction: either all of it is
// stored or, on error, none of it. Flags go first, then the deletions; a UID no longer in
// the mailbox is skipped.
func (s *Store) CommitMaildrop(ctx context.Context, mailboxID int64, c MaildropCommit) error {
	if len(c.Seen) == 0 && len(c.Deleted) == 0 {
		return nil
	}
	return s.write(ctx, "commit maildrop", func(wt *writeTx) error {
		if len(c.Seen) > 0 {
			if _, err := wt.setFlags(mailboxID, c.Seen, FlagsAdd, []string{FlagSeen}); err != nil {
				return fmt.Errorf("set \\Seen: %w", err)
			}
		}
		switch {
		case len(c.Deleted) == 0:
		case c.DeletedFlag != "":
			if _, err := wt.setFlags(mailboxID, c.Deleted, FlagsAdd, []string{c.DeletedFlag}); err != nil {
				return fmt.Errorf("set %s: %w", c.DeletedFlag, err)
			}
		default:
			if _, err := wt.expunge(mailboxID, c.Deleted, selectUIDs); err != nil {
				return fmt.Errorf("expunge: %w", err)
			}
		}
		return nil
	})
}
