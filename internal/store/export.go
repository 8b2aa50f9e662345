package store

import (
	"context"
	"database/sql"
	"fmt"
	"io"
)

// MailboxExport is one mailbox and its messages, as ExportSnapshot reads them.
type MailboxExport struct {
	Mailbox
	Messages []Message
}

// ExportSnapshot reads an account for `letterbox export` in one read transaction, so that
// its mailboxes, their messages, flags and UIDs and the bodies copied are one consistent
// picture even while a server delivers and expunges meanwhile (WAL readers never block the
// writer; the transaction does hold back checkpoints until it ends). fn gets every mailbox
// with its messages, by name and UID, and copyBody writes a message's raw bytes to w from
// the same snapshot.
func (s *Store) ExportSnapshot(ctx context.Context, accountID int64, fn func(mailboxes []MailboxExport, copyBody func(bodyID int64, w io.Writer) error) error) error {
	tx, err := s.readers.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr("export", err)
	}
	defer tx.Rollback()
	// The snapshot is taken at the transaction's first read: this one.
	mailboxes, err := exportMailboxes(ctx, tx, accountID)
	if err != nil {
		return wrapErr("export", err)
	}
	copyBody := func(bodyID int64, w io.Writer) error {
		rows, err := tx.QueryContext(ctx, `SELECT data FROM body_chunks WHERE body_id = ? ORDER BY seq`, bodyID)
		if err != nil {
			return wrapErr(fmt.Sprintf("export body %d", bodyID), err)
		}
		defer rows.Close()
		var buf []byte
		for rows.Next() {
			if err := rows.Scan(&buf); err != nil {
				return wrapErr(fmt.Sprintf("export body %d", bodyID), err)
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return wrapErr(fmt.Sprintf("export body %d", bodyID), rows.Err())
	}
	return fn(mailboxes, copyBody)
}

func exportMailboxes(ctx context.Context, tx *sql.Tx, accountID int64) ([]MailboxExport, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+mailboxColumns+` FROM mailboxes WHERE account_id = ? ORDER BY name`, accountID)
	if err != nil {
		return nil, err
	}
	var out []MailboxExport
	for rows.Next() {
		m, err := scanMailbox(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, MailboxExport{Mailbox: m})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		rows, err := tx.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages WHERE mailbox_id = ? ORDER BY uid`, out[i].ID)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			msg, err := scanMessage(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out[i].Messages = append(out[i].Messages, msg)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
