package sqlite

// Migrations are the schema's versions, in order: Migrations[i] brings the schema from
// version i to version i+1 (PRAGMA user_version). Each one runs in its own transaction at
// Open (the store's migrate.go runs them). Never edit a released migration; append a
// new one, in a named const of its own so that it can be renumbered, and its PostgreSQL
// counterpart to internal/store/postgres's Migrations and Covers. The files named below are package
// store's, where what each migration serves is written.
var Migrations = []string{
	// 1: the initial schema.
	`
-- One user. The counters (used_bytes, message_count) are kept by the triggers below, in
-- the same transaction that adds or removes a message. last_uidvalidity makes every new
-- mailbox's UIDVALIDITY larger than any this account has had, so a mailbox deleted and
-- created again never shows a client its old UIDVALIDITY.
CREATE TABLE accounts (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	address          TEXT    NOT NULL UNIQUE,           -- lower case
	password_hash    TEXT    NOT NULL,                  -- PHC $argon2id$... (or bcrypt $2b$...)
	quota_bytes      INTEGER NOT NULL DEFAULT 0,        -- 0: unlimited
	protocols        TEXT    NOT NULL DEFAULT '',       -- comma-separated; '': all
	disabled         INTEGER NOT NULL DEFAULT 0,
	created          INTEGER NOT NULL,                  -- unix seconds
	used_bytes       INTEGER NOT NULL DEFAULT 0,
	message_count    INTEGER NOT NULL DEFAULT 0,
	last_uidvalidity INTEGER NOT NULL DEFAULT 0
);

-- A folder. uid_next only grows; modseq is the highest modseq of any change in it.
CREATE TABLE mailboxes (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name        TEXT    NOT NULL,                       -- UTF-8, "/" delimited, "INBOX"
	special_use TEXT    NOT NULL DEFAULT '',
	uidvalidity INTEGER NOT NULL,
	uid_next    INTEGER NOT NULL DEFAULT 1,
	subscribed  INTEGER NOT NULL DEFAULT 1,
	modseq      INTEGER NOT NULL DEFAULT 0,
	UNIQUE (account_id, name)
);

-- A raw message, stored once (CRLF-normalised) and shared by every messages row that
-- refers to it, with what FETCH and SEARCH need, computed at delivery. AUTOINCREMENT:
-- an id is never reused, so a remembered body id (Spooled) cannot point at another body.
CREATE TABLE bodies (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	size        INTEGER NOT NULL,
	header_size INTEGER NOT NULL,                       -- top-level header incl. blank line
	lines       INTEGER NOT NULL,
	envelope    TEXT    NOT NULL,                       -- JSON of Envelope
	structure   TEXT    NOT NULL,                       -- JSON of Part, with offsets
	header      TEXT    NOT NULL,                       -- raw top-level header, for SEARCH
	body_text   TEXT    NOT NULL                        -- decoded text/* parts (bounded), for SEARCH
);

-- The bytes of a body, in chunks of 64 KiB (the last one shorter): streamed one short
-- query at a time, never loaded whole.
CREATE TABLE body_chunks (
	body_id INTEGER NOT NULL REFERENCES bodies(id) ON DELETE CASCADE,
	seq     INTEGER NOT NULL,                           -- 0, 1, 2, ...
	data    BLOB    NOT NULL,
	PRIMARY KEY (body_id, seq)
);

-- A message in a mailbox. System flags are a bitmask (\Seen 1, \Answered 2, \Flagged 4,
-- \Deleted 8, \Draft 16) so that STATUS can count unseen messages in SQL; keywords are
-- space-separated. internal_tz keeps INTERNALDATE's zone offset (seconds east of UTC).
CREATE TABLE messages (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid           INTEGER NOT NULL,
	body_id       INTEGER NOT NULL REFERENCES bodies(id),
	sysflags      INTEGER NOT NULL DEFAULT 0,
	keywords      TEXT    NOT NULL DEFAULT '',
	internal_date INTEGER NOT NULL,                     -- unix seconds
	internal_tz   INTEGER NOT NULL DEFAULT 0,
	size          INTEGER NOT NULL,
	modseq        INTEGER NOT NULL,
	UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_body ON messages (body_id);

-- The change log. modseq is the store-wide modification sequence; AUTOINCREMENT keeps it
-- strictly increasing even when rows are deleted. mailbox_id has no foreign key on
-- purpose: the tombstones of a deleted mailbox outlive it. Old rows are never pruned yet.
CREATE TABLE changes (
	modseq     INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	mailbox_id INTEGER NOT NULL,
	uid        INTEGER NOT NULL DEFAULT 0,
	kind       INTEGER NOT NULL                         -- ChangeKind
);
CREATE INDEX changes_account ON changes (account_id, modseq);

-- Keep the account's counters in step with its messages, whoever adds or removes them
-- (deliver, copy, expunge, or a cascade from deleting a mailbox or the account).
CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN
	UPDATE accounts SET used_bytes = used_bytes + NEW.size, message_count = message_count + 1
	 WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;
CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN
	UPDATE accounts SET used_bytes = used_bytes - OLD.size, message_count = message_count - 1
	 WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);
END;

-- A body lives as long as a message refers to it: when the last such row goes, the body
-- and (by cascade) its chunks go in the same transaction.
CREATE TRIGGER messages_body_gc AFTER DELETE ON messages BEGIN
	DELETE FROM bodies WHERE id = OLD.body_id
	   AND NOT EXISTS (SELECT 1 FROM messages WHERE body_id = OLD.body_id);
END;
`,
	// 2: aliases (recipients.go).
	`
-- An address that delivers to another account. Never an account's address too (checked
-- by CreateAccount and AddAlias); never a login name.
CREATE TABLE aliases (
	address    TEXT    PRIMARY KEY,                     -- lower case
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE
);
CREATE INDEX aliases_account ON aliases (account_id);
`,
	// 3: a quota on the number of messages (checkQuota).
	`
ALTER TABLE accounts ADD COLUMN quota_messages INTEGER NOT NULL DEFAULT 0; -- 0: unlimited
`,
	// 4: IMAP \Recent (RFC 3501 §2.3.2): the highest UID of the mailbox some session has
	// been given \Recent for (ClaimRecent). Mail already there is not recent.
	`
ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET recent_uid = uid_next - 1;
`,
	// 5: subscriptions as names of their own (RFC 3501 §6.3.6): a name stays subscribed
	// when its mailbox is deleted, and one can be subscribed before it exists.
	// mailboxes.subscribed is no longer read.
	`
CREATE TABLE subscriptions (
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name       TEXT    NOT NULL,                        -- as the mailbox would be named
	PRIMARY KEY (account_id, name)
) WITHOUT ROWID;
INSERT INTO subscriptions (account_id, name) SELECT account_id, name FROM mailboxes WHERE subscribed = 1;
`,
	// 6: CONDSTORE, QRESYNC, PREVIEW, SAVEDATE (condstore.go, previewfill.go). Kept in one entry,
	// the last, so that it can follow any migration merged in before it.
	MigrationCondstore,
	// 7: RFC 8474 THREADID (threads.go). Its own step, so that it can be renumbered.
	MigrationThreadID,
	// 8: the sort keys of SORT and THREAD (sortkeys.go), filled for the bodies already
	// stored by fillSortKeys.
	MigrationSortKeys,
	// 9: the threading keys in sort_keys alone (threads.go); bodies.message_id and
	// bodies.parent_ids dropped.
	MigrationThreadKeys,
}

// MigrationCondstore adds what RFC 7162 (CONDSTORE, QRESYNC), RFC 8970 (PREVIEW) and
// RFC 8514 (SAVEDATE) need of the store; RFC 8474 (OBJECTID) needs nothing new.
const MigrationCondstore = `
-- When a change was logged (unix seconds), so that expunge tombstones can be pruned after
-- Options.ExpungeRetention. The rows of older versions had none: their tombstones count
-- from this migration on.
ALTER TABLE changes ADD COLUMN at INTEGER;
UPDATE changes SET at = CAST(strftime('%s', 'now') AS INTEGER) WHERE kind = 3;

-- The tombstones of a mailbox, by modseq (Vanished), and all of them by age (pruning).
-- Partial indexes: only expunges (kind 3, ChangeExpunge) are in them, and every query
-- that uses them says kind = 3 literally.
CREATE INDEX changes_expunged ON changes (mailbox_id, modseq) WHERE kind = 3;
CREATE INDEX changes_expunged_at ON changes (at) WHERE kind = 3;

-- expunge_floor: the highest modseq of a tombstone of this mailbox pruned so far. Vanished
-- knows every expunge with a higher modseq; below it, it knows only what is still there.
ALTER TABLE mailboxes ADD COLUMN expunge_floor INTEGER NOT NULL DEFAULT 0;

-- FETCH CHANGEDSINCE and SEARCH MODSEQ: a mailbox's messages by modseq.
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);

-- RFC 8514 SAVEDATE: when the message was saved into its mailbox (unix seconds). NULL for
-- messages stored before this migration: their save date is unknown (SAVEDATE NIL).
ALTER TABLE messages ADD COLUMN save_date INTEGER;

-- RFC 8970 PREVIEW: the preview text, computed at delivery. NULL for bodies stored before
-- this migration: computed when first asked for, then kept (previewfill.go).
ALTER TABLE bodies ADD COLUMN preview TEXT;
`

// MigrationThreadID is RFC 8474 THREADID (the store's threads.go).
const MigrationThreadID = `
-- RFC 8474 THREADID (threads.go): the Message-ID of a body, and the message ids its
-- In-Reply-To and References name (space-separated), kept at delivery for threading.
ALTER TABLE bodies ADD COLUMN message_id TEXT;
ALTER TABLE bodies ADD COLUMN parent_ids TEXT;
CREATE INDEX bodies_message_id ON bodies (message_id) WHERE message_id IS NOT NULL;

-- The thread of a message row: the body id of the first message of its thread in the
-- account. NULL for rows stored before this migration (THREADID NIL).
ALTER TABLE messages ADD COLUMN thread_id INTEGER;
`

// MigrationThreadKeys keeps the threading keys in one place: THREADID's lookups read
// sort_keys (sortkeys.go), which holds the same Message-ID, In-Reply-To and References
// of every body, and the copies MigrationThreadID added to bodies go (SQLite's DROP
// COLUMN, which rewrites the bodies rows once). The store's migrateOne also fills, in the same
// transaction, the sort keys of any body without them (fillSortKeys), so that no body is
// left without its keys. Its own step, so that it can be renumbered.
const MigrationThreadKeys = `
CREATE INDEX sort_keys_message_id ON sort_keys (message_id) WHERE message_id != '';
DROP INDEX bodies_message_id;
ALTER TABLE bodies DROP COLUMN message_id;
ALTER TABLE bodies DROP COLUMN parent_ids;
`

// MigrationSortKeys creates the table of the sort keys of SORT and THREAD (the store's
// sortkeys.go); the store's migrateOne fills it for the bodies already stored
// (fillSortKeys), in the same transaction. Kept a migration of its own so that it can be
// renumbered among others.
const MigrationSortKeys = `
-- One row per body (a body is shared by its copies, and so are its keys).
CREATE TABLE sort_keys (
	body_id     INTEGER PRIMARY KEY REFERENCES bodies(id) ON DELETE CASCADE,
	sent_date   INTEGER,                 -- Date field, unix seconds; NULL: missing or unparseable
	subject     TEXT    NOT NULL,        -- Subject, RFC 2047-decoded (the ENVELOPE's)
	message_id  TEXT    NOT NULL,        -- Message-ID, with angle brackets; '' when absent
	in_reply_to TEXT    NOT NULL,        -- the first msg-id of In-Reply-To; '' when absent
	refs        TEXT    NOT NULL         -- the References field's body, unfolded; '' when absent
);
`
