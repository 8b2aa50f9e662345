// Package maildrop holds the rules that say which INBOX messages form a POP3 maildrop and
// how a message's POP3 unique-id (UIDL) is spelt. internal/protocol/pop3 serves by them, and the
// other views of the store (the test API, the web inspector, letterboxtest) show the same
// maildrop and the same UIDLs without a POP3 session. docs/pop3-vs-imap.md explains the
// rules for users.
//
// Implementation notes:
//
//   - It is pure and imports only the standard library, so internal/config can check
//     pop3.uidl_format and pop3.delete with it and nothing pulls in a protocol server to
//     learn a UIDL.
//   - A message is anything that reports its flags (store.Message does), so the package
//     does not depend on the store either.
package maildrop

import "fmt"

// Delete modes (pop3.delete): what a DELE committed by QUIT does to the message in the store.
const (
	// DeleteExpunge removes the message from INBOX (IMAP sessions see an EXPUNGE).
	DeleteExpunge = "expunge"
	// DeleteKeepFlagged only adds \Deleted: IMAP still sees the message, POP3 no longer.
	DeleteKeepFlagged = "keep-flagged"
	// DeleteHide adds the keyword $POP3Deleted: IMAP still sees the message, POP3 never again.
	DeleteHide = "hide"
)

// HiddenKeyword marks a message that POP3 deleted in the "hide" delete mode. Maildrops
// leave out messages carrying it, whatever the current delete mode.
const HiddenKeyword = "$POP3Deleted"

// deletedFlag is the IMAP system flag \Deleted (RFC 9051 §2.3.2), store.FlagDeleted.
const deletedFlag = `\Deleted`

// CheckDeleteMode reports an error unless mode is one of the delete modes ("" is not).
func CheckDeleteMode(mode string) error {
	switch mode {
	case DeleteExpunge, DeleteKeepFlagged, DeleteHide:
		return nil
	}
	return fmt.Errorf("%q: want %s, %s or %s", mode, DeleteExpunge, DeleteKeepFlagged, DeleteHide)
}

// Flagged is what the rules need of a message: whether it carries a flag, compared as IMAP
// compares flags (case-insensitively). store.Message has it.
type Flagged interface {
	HasFlag(flag string) bool
}

// InMaildrop reports whether a POP3 session lists the INBOX message m, with the delete mode
// deleteMode: not if a committed DELE hid it ($POP3Deleted, any mode) or, in the
// "keep-flagged" mode, left it \Deleted.
func InMaildrop(m Flagged, deleteMode string) bool {
	return !m.HasFlag(HiddenKeyword) && !(deleteMode == DeleteKeepFlagged && m.HasFlag(deletedFlag))
}
