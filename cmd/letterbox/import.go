package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/letterbox-mail/letterbox/internal/mailimport"
	"github.com/letterbox-mail/letterbox/internal/store"
)

func newImportCmd() *cobra.Command {
	var user, mailbox string
	cmd := &cobra.Command{
		Use:   "import --user ADDRESS [--mailbox NAME] PATH",
		Short: "Import an mbox file, a Maildir, or a Dovecot Maildir tree keeping its UIDs",
		Long: `Import every message of PATH into a user, which must exist. PATH is one of:

  a Dovecot Maildir   a Maildir++ tree with dovecot-uidlist files (Dovecot's
                      mail_location = maildir:~/Maildir): every folder (.Work.Clients
                      becomes Work/Clients), with its UIDVALIDITY, UIDs and next UID
                      kept, so that IMAP clients and POP3 UIDLs see no change.
  a Maildir           a directory with cur/ and new/ (and maybe Maildir++ folders
                      .A.B): messages get new UIDs, in delivery order.
  an mbox file        messages split at "From " lines (mboxrd quoting undone), dated
                      by that line; Status, X-Status and X-Keywords headers become
                      flags and keywords (and are removed).
  a directory of      as 'letterbox export --format mbox' writes: DIR/Work/Clients.mbox
  .mbox files         goes into Work/Clients.

Maildir messages keep their flags (S R F T D and Dovecot keywords a-z through
dovecot-keywords) and are dated by their file's time. The root Maildir (or the mbox)
goes into --mailbox (default INBOX); with --mailbox, folders go below it. Missing
folders are created.

Keeping UIDs: a folder takes Dovecot's UIDVALIDITY only if it is new or has never held
a message; one that has held messages under another UIDVALIDITY is refused (import
into a fresh account). Running the same import again skips what it already imported.
Messages that are not messages (no header) or too large are skipped and counted.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "user"); err != nil {
				return err
			}
			_, st, _, err := setup(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			return runImport(cmd.Context(), st, cmd.OutOrStdout(), cmd.ErrOrStderr(), user, mailbox, args[0])
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user to import for (required)")
	cmd.Flags().StringVar(&mailbox, "mailbox", "", "the folder to import into (default INBOX)")
	return cmd
}

// importTarget stores messages into one account and counts them.
type importTarget struct {
	ctx      context.Context
	st       *store.Store
	stdout   io.Writer
	stderr   io.Writer
	acct     store.Account
	imported int
	skipped  int // not messages, or too big
	already  int // imported by an earlier run (kept UIDs below the folder's UIDNEXT)
}

func runImport(ctx context.Context, st *store.Store, stdout, stderr io.Writer, user, mailbox, path string) error {
	acct, err := st.LookupAccount(ctx, user)
	if err != nil {
		return storeError(err, user)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return withCode(exitNoInput, err)
	}
	t := &importTarget{ctx: ctx, st: st, stdout: stdout, stderr: stderr, acct: acct}
	if !fi.IsDir() {
		if err := t.ensureMailbox(mailbox); err != nil {
			return err
		}
		err = t.mbox(path, mailbox)
		t.summary(fmt.Sprintf("into %s from mbox file %s", mailboxName(mailbox), path))
		return err
	}
	folders, err := mailimport.MaildirFolders(path)
	if err != nil {
		return withCode(exitNoInput, err)
	}
	if len(folders) == 0 {
		return t.mboxTree(path, mailbox)
	}
	for _, f := range folders {
		name := below(mailbox, f.Name)
		if mailimport.IsDovecotMaildir(f.Dir) {
			err = t.dovecotMaildir(f.Dir, name)
		} else {
			err = t.maildir(f.Dir, name)
		}
		if err != nil {
			t.summary(fmt.Sprintf("from %s before the error", path))
			return err
		}
	}
	t.summary(fmt.Sprintf("from %d Maildir folders in %s", len(folders), path))
	return nil
}

// below is folder name placed under mailbox ("" for none); INBOX becomes mailbox itself.
func below(mailbox, name string) string {
	switch {
	case mailbox == "":
		return name
	case name == "INBOX":
		return mailbox
	default:
		return mailbox + "/" + name
	}
}

// mboxTree imports a directory of mbox files as `letterbox export --format mbox` writes
// one: DIR/INBOX.mbox, DIR/Work/Clients.mbox, each into the folder its path names.
func (t *importTarget) mboxTree(dir, mailbox string) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() && strings.HasSuffix(p, ".mbox") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return withCode(exitNoInput, err)
	}
	if len(files) == 0 {
		return withCode(exitNoInput, fmt.Errorf("%s is neither a Maildir (no cur/ and new/), a Maildir++ tree, nor a directory of .mbox files", dir))
	}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		name := below(mailbox, filepath.ToSlash(strings.TrimSuffix(rel, ".mbox")))
		if err := t.ensureMailbox(mailboxOrEmpty(name)); err != nil {
			return err
		}
		if err := t.mbox(f, name); err != nil {
			t.summary(fmt.Sprintf("from %s before the error", dir))
			return err
		}
	}
	t.summary(fmt.Sprintf("from %d mbox files in %s", len(files), dir))
	return nil
}

func (t *importTarget) summary(where string) {
	s := fmt.Sprintf("imported %d messages for %s %s", t.imported, t.acct.Address, where)
	if t.skipped > 0 {
		s += fmt.Sprintf(" (%d skipped)", t.skipped)
	}
	if t.already > 0 {
		s += fmt.Sprintf(" (%d imported before)", t.already)
	}
	fmt.Fprintln(t.stdout, s)
}

// ensureMailbox creates mailbox if it is missing ("" is INBOX, which always exists).
func (t *importTarget) ensureMailbox(mailbox string) error {
	if mailbox == "" {
		return nil
	}
	_, err := t.st.MailboxByName(t.ctx, t.acct.ID, mailbox)
	if !errors.Is(err, store.ErrNoSuchMailbox) {
		return storeError(err)
	}
	if _, err := t.st.CreateMailbox(t.ctx, t.acct.ID, mailbox, ""); err != nil && !errors.Is(err, store.ErrMailboxExists) {
		return storeError(err)
	}
	fmt.Fprintf(t.stdout, "created mailbox %s\n", mailbox)
	return nil
}

func (t *importTarget) mbox(path, mailbox string) error {
	f, err := os.Open(path)
	if err != nil {
		return withCode(exitNoInput, err)
	}
	defer f.Close()
	r := mailimport.NewMboxReader(f)
	for n := 1; ; n++ {
		msg, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, mailimport.ErrNotMbox) {
			return withCode(exitDataErr, fmt.Errorf("%s: %w", path, err))
		}
		if err != nil {
			return withCode(exitNoInput, fmt.Errorf("%s: %w", path, err))
		}
		body, flags, err := mailimport.MboxFlags(msg.Body)
		if err != nil {
			return withCode(exitNoInput, fmt.Errorf("%s: %w", path, err))
		}
		if err := t.deliver(fmt.Sprintf("%s: message %d", path, n), body, mailbox, flags, msg.Date); err != nil {
			return err
		}
	}
}

// maildir imports a Maildir without UIDs of its own: its messages get new UIDs.
func (t *importTarget) maildir(dir, mailbox string) error {
	msgs, err := mailimport.ReadMaildir(dir)
	if err != nil {
		return withCode(exitNoInput, err)
	}
	if err := t.ensureMailbox(mailboxOrEmpty(mailbox)); err != nil {
		return err
	}
	for _, m := range msgs {
		f, err := os.Open(m.Path)
		if errors.Is(err, os.ErrNotExist) {
			continue // moved by a running mail client since the listing
		}
		if err != nil {
			return withCode(exitNoInput, err)
		}
		err = t.deliver(m.Path, f, mailbox, m.Flags, m.Date)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// mailboxOrEmpty is "" for INBOX, which needs no creating.
func mailboxOrEmpty(name string) string {
	if name == "INBOX" {
		return ""
	}
	return name
}

// deliver stores one message with a new UID; a message the store refuses as such is
// skipped, anything else stops the import.
func (t *importTarget) deliver(what string, r io.Reader, mailbox string, flags []string, date time.Time) error {
	// Migrated: mail that exists elsewhere is kept as it was, whatever its header size and
	// MIME nesting (limits.header_size and limits.mime_depth are for new mail).
	_, err := t.st.Deliver(t.ctx, t.acct.ID, r, store.DeliverOptions{Mailbox: mailbox, Flags: flags, InternalDate: date, Migrated: true})
	if err == nil {
		t.imported++
		return nil
	}
	return t.refused(what, err)
}

// refused decides what a store error means for the import: messages that are not
// messages or too big are skipped; anything else stops it.
func (t *importTarget) refused(what string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotMessage), errors.Is(err, store.ErrTooBig):
		t.skipped++
		fmt.Fprintf(t.stderr, "letterbox: %s skipped: %v\n", what, err)
		return nil
	case errors.Is(err, store.ErrOverQuota):
		return withCode(exitTempFail, fmt.Errorf("%s: %s is over quota; import stopped", what, t.acct.Address))
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("import interrupted")
	default:
		return storeError(fmt.Errorf("%s: %w", what, err))
	}
}

// importBatch bounds one ImportMessages transaction, so that a server running meanwhile
// waits for the write lock no longer than for a few deliveries.
const (
	importBatchMessages = 200
	importBatchBytes    = 16 << 20
)

// dovecotMaildir imports a Maildir with its dovecot-uidlist, keeping UIDVALIDITY, UIDs and
// the next UID.
func (t *importTarget) dovecotMaildir(dir, mailbox string) error {
	mb, err := mailimport.ReadDovecotMaildir(dir)
	if err != nil {
		return withCode(exitNoInput, err)
	}
	m, err := t.st.ImportMailbox(t.ctx, t.acct.ID, mailbox, mb.UIDValidity)
	if errors.Is(err, store.ErrUIDValidityMismatch) {
		return withCode(exitDataErr, fmt.Errorf("%s: %w; its UIDs cannot be kept there (import into a new account, or delete the folder first)", dir, err))
	}
	if err != nil {
		return storeError(err)
	}
	var batch []store.ImportedMessage
	var batchBytes int64
	defer func() {
		for _, b := range batch {
			b.Message.Close()
		}
	}()
	flush := func() error {
		res, err := t.st.ImportMessages(t.ctx, m.ID, batch)
		for _, b := range batch {
			b.Message.Close()
		}
		batch, batchBytes = batch[:0], 0
		if err != nil {
			return t.refused(dir, err)
		}
		t.imported += res.Imported
		t.already += res.Skipped
		return nil
	}
	for _, msg := range mb.Messages {
		if msg.UID < m.UIDNext {
			t.already++
			continue
		}
		sp, err := t.spool(msg.Path)
		if err != nil {
			return err
		}
		if sp == nil {
			continue
		}
		batch = append(batch, store.ImportedMessage{UID: msg.UID, Message: sp, Flags: msg.Flags, InternalDate: msg.Date})
		batchBytes += sp.Size()
		if len(batch) >= importBatchMessages || batchBytes >= importBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	if err := t.st.RaiseUIDNext(t.ctx, m.ID, mb.NextUID); err != nil {
		return storeError(err)
	}
	fmt.Fprintf(t.stdout, "%s: UIDVALIDITY %d, UIDNEXT %d, %d messages (%s)\n", m.Name, mb.UIDValidity, mb.NextUID, len(mb.Messages), filepath.Clean(dir))
	return nil
}

// spool reads and parses one message file; nil (and no error) when it is skipped.
func (t *importTarget) spool(path string) (*store.Spooled, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // moved by a running mail client since the listing
	}
	if err != nil {
		return nil, withCode(exitNoInput, err)
	}
	defer f.Close()
	sp, err := t.st.Spool(f, store.SpoolOptions{Migrated: true}) // kept as it was, as in deliver
	if err != nil {
		return nil, t.refused(path, err)
	}
	return sp, nil
}
