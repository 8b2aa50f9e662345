package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
)

// Threads for RFC 8474 THREADID. When a message row is stored, it joins a thread of its
// account, decided once and kept:
//
//  1. a copy of a message already in the account (COPY, MOVE, the same body delivered
//     again) is in that message's thread;
//  2. otherwise, a reply is in the thread of the first message of the account (lowest
//     thread) whose Message-ID its In-Reply-To or References name;
//  3. otherwise it begins a thread of its own, named by its body id.
//
// So a thread is named by the EMAILID number of its first stored message, and a reply that
// arrives before its parent begins its own thread: the threads are never merged later, as
// THREADID must not change (RFC 8474 §5.2). Messages stored before schema 7 have no thread
// (THREADID NIL), so replies to them begin new threads. The keys are sort_keys' (the
// Message-ID, the References field, the first In-Reply-To msg-id): since
// sqlite.MigrationThreadKeys, the only copy. The migrations (sqlite.MigrationThreadID,
// sqlite.MigrationThreadKeys) are in internal/store/sqlite.

// maxParentIDs bounds the message ids of References and In-Reply-To a body keeps for
// threading: the last ones, nearest the message.
const maxParentIDs = 20

// parentIDs are the message ids a body's thread is looked for by: those of its
// References field, then the first of In-Reply-To (the one sort_keys keeps, as RFC 5256
// §4 uses), the last maxParentIDs of them.
func parentIDs(refs, inReplyTo string) []string {
	ids := mailmsg.ParseMessageIDs(refs)
	if inReplyTo != "" {
		ids = append(ids, inReplyTo)
	}
	if len(ids) > maxParentIDs {
		ids = ids[len(ids)-maxParentIDs:]
	}
	return ids
}

// threadOf decides the thread of a new message row of body bodyID in the account.
func (wt *writeTx) threadOf(accountID, bodyID int64) (int64, error) {
	var thread int64
	err := wt.queryRow(`SELECT m.thread_id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id
		WHERE m.body_id = ? AND x.account_id = ? AND m.thread_id IS NOT NULL LIMIT 1`, bodyID, accountID).Scan(&thread)
	if err == nil {
		return thread, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("thread of a copy: %w", err)
	}
	var refs, inReplyTo string
	err = wt.queryRow(`SELECT refs, in_reply_to FROM sort_keys WHERE body_id = ?`, bodyID).Scan(&refs, &inReplyTo)
	if err != nil && !errors.Is(err, sql.ErrNoRows) { // no row: no keys, a thread of its own
		return 0, fmt.Errorf("read parent ids: %w", err)
	}
	ids := parentIDs(refs, inReplyTo)
	if len(ids) == 0 {
		return bodyID, nil
	}
	args := make([]any, 0, len(ids)+1)
	for _, id := range ids {
		args = append(args, id)
	}
	args = append(args, accountID)
	var found sql.NullInt64
	// message_id != '' lets SQLite use the partial index sort_keys_message_id.
	err = wt.queryRow(`SELECT MIN(m.thread_id) FROM sort_keys k
		JOIN messages m ON m.body_id = k.body_id JOIN mailboxes x ON x.id = m.mailbox_id
		WHERE k.message_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) AND k.message_id != '' AND x.account_id = ?`, args...).Scan(&found)
	if err != nil {
		return 0, fmt.Errorf("thread of a reply: %w", err)
	}
	if found.Valid {
		return found.Int64, nil
	}
	return bodyID, nil
}
