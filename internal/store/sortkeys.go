package store

import (
	"context"
	"database/sql"
	"fmt"
)

// The sort keys of a body: what SORT and THREAD (RFC 5256) compare, computed once at
// delivery from the parsed message and kept in a narrow table of their own, so that a
// SORT or THREAD over a mailbox reads one short row per message instead of decoding each
// body's envelope and scanning its stored header (the bodies rows are wide: their header
// and text columns spill into overflow pages). The table is internal/store/sqlite's MigrationSortKeys; migrateOne fills
// it for the bodies already stored (fillSortKeys), in the same transaction.

// sortKeys is one sort_keys row.
type sortKeys struct {
	sentDate                            sql.NullInt64
	subject, messageID, inReplyTo, refs string
}

// sortKeysOf computes the keys from a message's envelope and raw top-level header.
func sortKeysOf(env *Envelope, header string) sortKeys {
	k := sortKeys{subject: env.Subject, messageID: env.MessageID, refs: headerField(header, "References")}
	if !env.Date.IsZero() {
		k.sentDate = sql.NullInt64{Int64: env.Date.Unix(), Valid: true}
	}
	if len(env.InReplyTo) > 0 {
		k.inReplyTo = env.InReplyTo[0]
	}
	return k
}

const insertSortKeys = `INSERT OR REPLACE INTO sort_keys (body_id, sent_date, subject, message_id, in_reply_to, refs) VALUES (?, ?, ?, ?, ?, ?)`

// insertSortKeys stores the keys of a new body (insertBody).
func (wt *writeTx) insertSortKeys(bodyID int64, md *parsed) error {
	k := sortKeysOf(&md.Envelope, md.Header)
	if _, err := wt.exec(insertSortKeys, bodyID, k.sentDate, k.subject, k.messageID, k.inReplyTo, k.refs); err != nil {
		return fmt.Errorf("insert sort keys: %w", err)
	}
	return nil
}

// fillSortKeys adds the sort keys of every body that has none, a thousand bodies at a
// time, inside the migration's transaction.
func fillSortKeys(ctx context.Context, tx *sql.Tx) error {
	type stored struct {
		id     int64
		env    []byte
		header string
	}
	var after int64
	for {
		rows, err := tx.QueryContext(ctx, `SELECT id, envelope, header FROM bodies
			WHERE id > ? AND id NOT IN (SELECT body_id FROM sort_keys) ORDER BY id LIMIT 1000`, after)
		if err != nil {
			return wrapErr("fill sort keys", err)
		}
		var batch []stored
		for rows.Next() {
			var b stored
			if err := rows.Scan(&b.id, &b.env, &b.header); err != nil {
				rows.Close()
				return wrapErr("fill sort keys", err)
			}
			batch = append(batch, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return wrapErr("fill sort keys", err)
		}
		if len(batch) == 0 {
			return nil
		}
		for _, b := range batch {
			var env Envelope
			if err := decodeEnvelope(b.env, &env); err != nil {
				return fmt.Errorf("store: fill sort keys: body %d: envelope: %w", b.id, err)
			}
			k := sortKeysOf(&env, b.header)
			if _, err := tx.ExecContext(ctx, insertSortKeys, b.id, k.sentDate, k.subject, k.messageID, k.inReplyTo, k.refs); err != nil {
				return wrapErr(fmt.Sprintf("fill sort keys of body %d", b.id), err)
			}
		}
		after = batch[len(batch)-1].id
	}
}
