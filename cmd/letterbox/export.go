package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/letterbox-mail/letterbox/internal/mailimport"
	"github.com/letterbox-mail/letterbox/internal/store"
)

func newExportCmd() *cobra.Command {
	var user, format string
	cmd := &cobra.Command{
		Use:   "export --user ADDRESS [--format maildir|mbox] DIR",
		Short: "Write every folder of a user to a Maildir++ tree or to mbox files",
		Long: `Write every folder of a user, with flags, keywords and dates, into DIR (created;
it must be missing or empty). This works while 'serve' runs: the export reads one
consistent snapshot of the account, and deliveries carry on meanwhile.

maildir (default): a Maildir++ tree as Dovecot keeps one (mail_location =
  maildir:~/Maildir): INBOX is DIR itself, Work/Clients is DIR/.Work.Clients. Flags are
  the info letters (S R F T D), keywords the letters a-z named in each folder's
  dovecot-keywords, INTERNALDATE the file's time, and dovecot-uidlist keeps UIDVALIDITY,
  UIDs and the next UID, so that Dovecot, or 'letterbox import' into another store,
  serves the same UIDs and POP3 UIDLs.
mbox: one mboxrd file per folder, DIR/INBOX.mbox, DIR/Work/Clients.mbox. The "From "
  line carries INTERNALDATE (UTC); Status, X-Status and X-Keywords headers carry flags
  and keywords, as Dovecot and mutt write them. UIDs are not kept.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "user"); err != nil {
				return err
			}
			if format != "maildir" && format != "mbox" {
				return withCode(exitUsage, fmt.Errorf("--format %q: want maildir or mbox", format))
			}
			_, st, _, err := setup(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			return runExport(cmd.Context(), st, cmd.OutOrStdout(), user, format, args[0])
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user to export (required)")
	cmd.Flags().StringVar(&format, "format", "maildir", "maildir or mbox")
	return cmd
}

func runExport(ctx context.Context, st *store.Store, stdout io.Writer, user, format, dir string) error {
	acct, err := st.LookupAccount(ctx, user)
	if err != nil {
		return storeError(err, user)
	}
	if des, err := os.ReadDir(dir); err == nil && len(des) > 0 {
		return withCode(exitCantCrt, fmt.Errorf("%s is not empty", dir))
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return withCode(exitCantCrt, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return withCode(exitCantCrt, err)
	}
	var folders, messages, dropped int
	err = st.ExportSnapshot(ctx, acct.ID, func(mailboxes []store.MailboxExport, copyBody func(int64, io.Writer) error) error {
		for _, mb := range mailboxes {
			var n int
			var err error
			if format == "maildir" {
				n, err = exportMaildir(dir, mb, copyBody, &dropped)
			} else {
				n, err = exportMbox(dir, mb, copyBody)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", mb.Name, err)
			}
			folders++
			messages += n
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrTemporary) {
			return storeError(err)
		}
		return withCode(exitCantCrt, err)
	}
	fmt.Fprintf(stdout, "exported %d messages in %d folders of %s to %s (%s)\n", messages, folders, acct.Address, dir, format)
	if dropped > 0 {
		fmt.Fprintf(stdout, "warning: %d keywords beyond the 26 a Maildir folder can name were left out\n", dropped)
	}
	return nil
}

func exportMaildir(root string, mb store.MailboxExport, copyBody func(int64, io.Writer) error, dropped *int) (int, error) {
	f, err := mailimport.NewMaildirFolder(root, mb.Name, mb.UIDValidity, mb.UIDNext)
	if err != nil {
		return 0, err
	}
	for _, m := range mb.Messages {
		err := f.Add(m.UID, m.Flags, m.InternalDate, m.Size, func(w io.Writer) error { return copyBody(m.BodyID, w) })
		if err != nil {
			return 0, err
		}
	}
	*dropped += f.Dropped
	return len(mb.Messages), f.Close()
}

func exportMbox(root string, mb store.MailboxExport, copyBody func(int64, io.Writer) error) (int, error) {
	levels := strings.Split(mb.Name, "/")
	for i, l := range levels {
		if l == "." || l == ".." {
			levels[i] = strings.ReplaceAll(l, ".", "_") // never a way out of root
		}
	}
	path := filepath.Join(root, filepath.Join(levels...)+".mbox")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, err
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	w := mailimport.NewMboxWriter(file)
	for _, m := range mb.Messages {
		if err := w.Add(m.Flags, m.InternalDate, func(w io.Writer) error { return copyBody(m.BodyID, w) }); err != nil {
			file.Close()
			return 0, err
		}
	}
	err = errors.Join(w.Flush(), file.Sync(), file.Close())
	return len(mb.Messages), err
}
