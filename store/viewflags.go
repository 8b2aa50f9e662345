package store

import (
	"context"
	"slices"
)

// UIDFlags is one message of a mailbox as a session's view of it starts: its UID and
// flags (as Message.Flags gives them).
type UIDFlags struct {
	UID   uint32
	Flags []string
}

// MessageFlags returns the UID and flags of every message of a mailbox, ascending by UID:
// what IMAP SELECT reads of each message (RFC 3501 §6.3.1), in a query of the three
// columns it needs. The messages with the same flags share one Flags slice, clipped to
// its length so that an append copies it: read only, as every Flags is.
func (s *Store) MessageFlags(ctx context.Context, mailboxID int64) ([]UIDFlags, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT uid, sysflags, keywords FROM messages WHERE mailbox_id = ? ORDER BY uid`, mailboxID)
	if err != nil {
		return nil, wrapErr("list message flags", err)
	}
	defer rows.Close()
	type key struct {
		sys      int
		keywords string
	}
	shared := make(map[key][]string)
	var out []UIDFlags
	var k key
	var uid uint32
	for rows.Next() {
		if err := rows.Scan(&uid, &k.sys, &k.keywords); err != nil {
			return nil, wrapErr("list message flags", err)
		}
		flags, ok := shared[k]
		if !ok {
			flags = slices.Clip(decodeFlags(k.sys, k.keywords).list())
			shared[k] = flags
		}
		out = append(out, UIDFlags{UID: uid, Flags: flags})
	}
	return out, wrapErr("list message flags", rows.Err())
}
