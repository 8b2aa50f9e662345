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
// (THREADID NIL) and their bodies no message_id, so replies to them begin new threads.

// maxParentIDs bounds the message ids of References and In-Reply-To a body keeps for
// threading: the last ones, nearest the message.
const maxParentIDs = 20

const migrationThreadID = `
-- RFC 8474 THREADID (threads.go): the Message-ID of a body, and the message ids its
-- In-Reply-To and References name (space-separated), kept at delivery for threading.
ALTER TABLE bodies ADD COLUMN message_id TEXT;
ALTER TABLE bodies ADD COLUMN parent_ids TEXT;
CREATE INDEX bodies_message_id ON bodies (message_id) WHERE message_id IS NOT NULL;

-- The thread of a message row: the body id of the first message of its thread in the
-- account. NULL for rows stored before this migration (THREADID NIL).
ALTER TABLE messages ADD COLUMN thread_id INTEGER;
`

// threadKeys are what a body keeps for threading: its Message-ID (NULL when it has none)
// and the ids of its References field, then In-Reply-To, the last maxParentIDs of them.
func threadKeys(md *mailmsg.Parsed) (msgID sql.NullString, parents string) {
	if id := md.Envelope.MessageID; id != "" {
		msgID = sql.NullString{String: id, Valid: true}
	}
	ids := mailmsg.ParseMessageIDs(headerField(md.Header, "References"))
	ids = append(ids, md.Envelope.InReplyTo...)
	if len(ids) > maxParentIDs {
		ids = ids[len(ids)-maxParentIDs:]
	}
	return msgID, strings.Join(ids, " ")
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
	var parents sql.NullString
	if err := wt.queryRow(`SELECT parent_ids FROM bodies WHERE id = ?`, bodyID).Scan(&parents); err != nil {
		return 0, fmt.Errorf("read parent ids: %w", err)
	}
	ids := strings.Fields(parents.String)
	if len(ids) == 0 {
		return bodyID, nil
	}
	args := make([]any, 0, len(ids)+1)
	for _, id := range ids {
		args = append(args, id)
	}
	args = append(args, accountID)
	var found sql.NullInt64
	err = wt.queryRow(`SELECT MIN(m.thread_id) FROM bodies b
		JOIN messages m ON m.body_id = b.id JOIN mailboxes x ON x.id = m.mailbox_id
		WHERE b.message_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) AND x.account_id = ?`, args...).Scan(&found)
	if err != nil {
		return 0, fmt.Errorf("thread of a reply: %w", err)
	}
	if found.Valid {
		return found.Int64, nil
	}
	return bodyID, nil
}
