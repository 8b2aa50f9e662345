// Package store is Letterbox's single source of truth: accounts, mailboxes, messages and
// a change log, kept in one SQLite database under the data directory.
//
// Every protocol (POP3, IMAP, LMTP) and every CLI command reads and writes mail only
// through this package; none of them sees SQL. The store knows no protocol.
//
// Implementation notes:
//
//   - SQLite in WAL mode through mattn/go-sqlite3 (internal/store/sqlite: its schema, connection
//     parameters and error codes), in <dir>/letterbox.db. One writer
//     connection runs every write in a short BEGIN IMMEDIATE transaction; a pool of
//     read-only (query_only) connections serves reads and never blocks the writer.
//   - Group commit (store.go, write): every write is a request to one writer goroutine,
//     which runs the requests queued meanwhile (up to maxBatch) in one transaction, each
//     in its own savepoint, so that a failing request is undone alone, and commits them
//     with one fsync. A write returns only after that commit; nothing waits to fill a
//     batch. A write's function therefore runs on the writer goroutine and must not call
//     another Store write.
//     synchronous=FULL: a write that returned nil is durable, so a protocol may acknowledge
//     it (LMTP 250, APPEND OK, POP3 QUIT +OK) and survive kill -9. busy_timeout (10 s) makes
//     a second process (`letterbox deliver` beside `serve`) wait for the lock rather than
//     fail; SQLite's busy, locked, full and I/O errors come back wrapped in ErrTemporary,
//     and a full disk or a read-only store (SQLite's or the spool's) as ErrStorageFull.
//   - The schema is versioned (PRAGMA user_version); the migrations (internal/store/sqlite's
//     Migrations, run by migrate.go) run at Open, each in its own transaction.
//   - A raw message is stored once, CRLF-normalised, in 64 KiB chunks (so it is streamed,
//     never held whole in memory), and shared by every message row that refers to it (LMTP
//     to several recipients through Spool, IMAP COPY). A trigger removes it when the last
//     row referring to it goes, in the same transaction; other triggers keep each account's
//     message and byte counters. Delivery spools the input to <dir>/tmp first (unlinked at
//     once, so a crash leaves nothing) unless it fits in memory (256 KiB), enforcing the
//     size limit as it reads.
//   - What listing, sizing, FETCH and SEARCH need (exact size, line counts, header fields,
//     ENVELOPE, BODYSTRUCTURE with byte offsets, decoded text) is computed once, at delivery,
//     by one streaming pass over the spooled message (plus go-message decoding of its text
//     parts), and stored beside the message. Nobody re-parses to list. Malformed MIME never
//     fails a delivery: what cannot be understood is described as text/plain.
//   - New mail is refused for its shape (a *ContentLimitError): a header section above
//     Options.MaxHeaderSize, MIME nesting deeper than Options.MaxMIMEDepth. The parser reads
//     the message as it is spooled (spoolReader), so the refusal comes at the line that
//     crosses the limit, with no more than the parser's and the spool's buffers read beyond
//     it. Migrated mail (SpoolOptions.Migrated, `letterbox import`) is never refused so:
//     it is kept as it was, described within the parse bounds (internal/mailmsg/parse.go).
//   - UIDs strictly increase within a mailbox and are never reused: they come from the
//     mailbox's uid_next, which only grows. UIDVALIDITY changes only when a mailbox of the
//     same name is created anew (it is always above any the account has had).
//   - Every change (append, flags, expunge, mailbox create/rename/delete) writes a change-log
//     row with a new, store-wide, strictly increasing modification sequence (modseq) in the
//     same transaction. An expunge leaves such a row behind as its tombstone, so any session
//     can ask what changed since the modseq it last saw (Changes). Tombstones older than
//     Options.ExpungeRetention are pruned; the rest of the log is kept (condstore.go).
//   - After a commit, waiters registered with Watch for that account are woken (coalesced,
//     never blocking the writer). Commits made by another process on the same data
//     directory are noticed by watching the database files with fsnotify (and a slow timer
//     as a fallback), confirmed with PRAGMA data_version, and reach the same waiters the
//     same way, within a second. The hub behind Watch is an interface, so that another
//     backend could feed it (PostgreSQL LISTEN/NOTIFY). Concurrent identical reads of the
//     change log share one query, and the waiters woken by one notification share its
//     answer (ChangesAsOf): 10,000 sessions in IDLE cost one query per delivery.
//   - With FTS5 (build tag sqlite_fts5), a trigram full-text index of the text SEARCH
//     matches narrows TEXT/BODY/HEADER searches. A background indexer keeps it up to a
//     mark, above which every message is a candidate, so it can lag but never make SEARCH
//     answer differently (fts.go).
package store

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
)

// Errors returned by the store. Callers test them with errors.Is.
var (
	ErrNoSuchAccount    = errors.New("store: no such account")
	ErrAccountExists    = errors.New("store: account already exists")
	ErrAuthFailed       = errors.New("store: authentication failed")
	ErrAccountDisabled  = errors.New("store: account disabled")
	ErrNoSuchMailbox    = errors.New("store: no such mailbox")
	ErrMailboxExists    = errors.New("store: mailbox already exists")
	ErrMailboxProtected = errors.New("store: mailbox cannot be deleted or renamed away")
	ErrNoSuchMessage    = errors.New("store: no such message") // expunged, or never existed
	ErrOverQuota        = errors.New("store: over quota")
	ErrTooBig           = errors.New("store: message too big")
	ErrNotMessage       = mailmsg.ErrNotMessage
	// ErrHeaderTooBig and ErrNestingTooDeep refuse new mail for its shape (a header section
	// above Options.MaxHeaderSize, MIME nesting deeper than Options.MaxMIMEDepth). They come
	// inside a *ContentLimitError, which names the limit.
	ErrHeaderTooBig   = mailmsg.ErrHeaderTooBig
	ErrNestingTooDeep = mailmsg.ErrNestingTooDeep
	// ErrTemporary wraps trouble worth retrying (database busy or locked, disk full).
	ErrTemporary = errors.New("store: temporary failure")
	// ErrStorageFull is the ErrTemporary of a store that cannot take more data: the disk
	// or the filesystem quota is full (SQLITE_FULL, ENOSPC, EDQUOT) or the store is
	// read-only (SQLITE_READONLY, EROFS). Nothing stored is harmed and writes succeed again
	// once space returns. errors.Is(err, ErrTemporary) holds for it too.
	ErrStorageFull = fmt.Errorf("store: storage full or read-only: %w", ErrTemporary)
)

// System flags, in their canonical case. Keywords are any other atom ("$Label1", "Work").
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// Special-use attributes (RFC 6154) the store gives the folders it creates for new accounts.
const (
	SpecialSent    = `\Sent`
	SpecialDrafts  = `\Drafts`
	SpecialTrash   = `\Trash`
	SpecialJunk    = `\Junk`
	SpecialArchive = `\Archive`
)

// Protocols an account may use. An account allows all of them unless restricted.
const (
	ProtocolIMAP = "imap"
	ProtocolPOP3 = "pop3"
)

// Account is one user: an address (or a bare name) with a password hash and a mailbox tree.
type Account struct {
	ID            int64
	Address       string   // normalised: lower case
	QuotaBytes    int64    // 0: unlimited
	QuotaMessages int64    // 0: unlimited
	Protocols     []string // allowed protocols; empty means all
	Disabled      bool
	Created       time.Time
	UsedBytes     int64 // sum of the sizes of all its messages
	Messages      int64 // number of messages in all its mailboxes
}

// AtQuota reports whether the account has reached its quota in bytes or in messages: it
// takes nothing more (LMTP refuses it at RCPT).
func (a Account) AtQuota() bool {
	return a.QuotaBytes > 0 && a.UsedBytes >= a.QuotaBytes ||
		a.QuotaMessages > 0 && a.Messages >= a.QuotaMessages
}

// Allows reports whether the account may log in with protocol (ProtocolIMAP, ProtocolPOP3).
func (a Account) Allows(protocol string) bool {
	if len(a.Protocols) == 0 {
		return true
	}
	for _, p := range a.Protocols {
		if p == protocol {
			return true
		}
	}
	return false
}

// NewAccount describes an account to create.
type NewAccount struct {
	Address       string
	Password      string // plaintext; only its argon2id hash is stored
	QuotaBytes    int64  // 0: unlimited
	QuotaMessages int64  // 0: unlimited
	Protocols     []string
}

// Mailbox is one folder of an account. Names use "/" as the hierarchy delimiter and are
// stored in UTF-8; "INBOX" is matched case-insensitively and always spelled "INBOX".
type Mailbox struct {
	ID          int64
	AccountID   int64
	Name        string
	SpecialUse  string // one of the Special* constants, or ""
	UIDValidity uint32
	UIDNext     uint32
	// RecentUID is the highest UID some IMAP session has been given \Recent for
	// (ClaimRecent); messages above it are recent and not yet claimed.
	RecentUID uint32
	ModSeq    int64 // highest modseq of any change in this mailbox
	// Subscribed: the mailbox's name is subscribed (Subscriptions lists every subscribed
	// name, with or without a mailbox).
	Subscribed bool
}

// ObjectID is the mailbox's RFC 8474 MAILBOXID. It stays the same across a RENAME (which
// keeps the row) and is never given to another mailbox (mailbox ids are never reused, and
// Restore carries their sequence over). Renaming INBOX moves its messages into a new
// mailbox (RFC 3501 §6.3.5), which gets a MAILBOXID of its own; INBOX keeps its.
func (m Mailbox) ObjectID() string { return "M" + strconv.FormatInt(m.ID, 10) }

// MailboxStatus counts a mailbox's messages (IMAP STATUS, POP3 STAT).
type MailboxStatus struct {
	Mailbox
	Messages int64
	Unseen   int64
	Deleted  int64 // messages flagged \Deleted
	// DeletedSize is the sum of the sizes of the messages flagged \Deleted: what an
	// EXPUNGE would free (IMAP STATUS DELETED-STORAGE, RFC 9208 §4.4).
	DeletedSize int64
	Size        int64 // sum of message sizes
	Recent      int64 // messages above RecentUID: recent, no session has claimed them yet
}

// Message is one message row in a mailbox: what every listing needs, nothing parsed.
type Message struct {
	ID           int64 // row id, unique in the store
	MailboxID    int64
	UID          uint32
	Flags        []string // system flags in canonical case, then keywords; sorted
	InternalDate time.Time
	Size         int64 // exact octets of the CRLF-normalised message
	ModSeq       int64 // modseq of the last change to this message
	BodyID       int64 // the stored raw message this row refers to
	// SaveDate is when the message was saved into this mailbox (RFC 8514 SAVEDATE): by
	// delivery, APPEND, COPY, MOVE or import. Zero for messages stored before the store
	// kept it: SAVEDATE NIL.
	SaveDate time.Time
	// ThreadRoot is the body id of the first message of its thread in the account, as
	// assigned when the message was stored (threads.go); 0 for messages stored before the
	// store threaded (schema 7).
	ThreadRoot int64
}

// EmailID is the message's RFC 8474 EMAILID: it names the stored raw message, which a
// COPY or MOVE shares (and so does a delivery to several accounts without Prepend), so
// every copy of one message has the same EMAILID, and no other message ever gets it (body
// ids are never reused, and Restore carries their sequence over).
func (m Message) EmailID() string { return "E" + strconv.FormatInt(m.BodyID, 10) }

// ThreadID is the message's RFC 8474 THREADID: "T" and its ThreadRoot, the same for every
// message of the thread in the account and for all copies of one; "" for messages stored
// before the store threaded, which IMAP answers THREADID NIL (RFC 8474 §5.2).
func (m Message) ThreadID() string {
	if m.ThreadRoot == 0 {
		return ""
	}
	return "T" + strconv.FormatInt(m.ThreadRoot, 10)
}

// HasFlag reports whether m carries flag (case-insensitive, as IMAP compares flags).
func (m Message) HasFlag(flag string) bool {
	for _, f := range m.Flags {
		if equalFold(f, flag) {
			return true
		}
	}
	return false
}

// Address, Envelope and Part describe a message's header and MIME tree; they are
// internal/mailmsg's, which computes them at delivery.
type (
	Address  = mailmsg.Address
	Envelope = mailmsg.Envelope
	Part     = mailmsg.Part
)

// Metadata is what FETCH ENVELOPE / BODYSTRUCTURE and SEARCH need of a message, computed
// once at delivery.
type Metadata struct {
	Message
	Envelope  Envelope
	Structure Part
	// HeaderSize is the number of octets of the top-level header, including the blank line
	// that ends it (BODY[HEADER] length).
	HeaderSize int64
	// Lines is the number of lines of the whole message.
	Lines int64
	// Preview is the RFC 8970 PREVIEW text (MetadataParts.Preview): up to PreviewMax
	// characters of the message's first text part, decoded, whitespace collapsed; "" when
	// the message has no text to preview.
	Preview string
}

// UIDRange is an inclusive range of UIDs; Stop 0 means "to the last message" (IMAP's *).
type UIDRange struct {
	Start, Stop uint32
}

// FlagOp says how SetFlags changes a message's flags.
type FlagOp int

const (
	FlagsAdd     FlagOp = iota // +FLAGS
	FlagsRemove                // -FLAGS
	FlagsReplace               // FLAGS
)

// FlagUpdate reports the flags a message has after SetFlags changed it.
type FlagUpdate struct {
	UID    uint32
	Flags  []string
	ModSeq int64 // the message's modseq after the change (unchanged if Changed is false)
	// Changed says the flags changed (and so the modseq did). A change that leaves the
	// flags as they were changes no modseq (RFC 7162 §3.1: the modseq moves when the
	// metadata does).
	Changed bool
}

// UIDPair maps a source UID to the UID its copy got in the target mailbox (COPYUID).
type UIDPair struct {
	Src, Dst uint32
}

// DeliverOptions says where and how Deliver stores a message.
type DeliverOptions struct {
	Mailbox      string    // "" means INBOX
	Flags        []string  // initial flags and keywords
	InternalDate time.Time // zero means now
	// Prepend is header text (each line ending in CRLF) stored before the message, such as
	// Return-Path and Delivered-To from LMTP. IMAP APPEND leaves it empty: the message is
	// stored exactly as given.
	Prepend []byte
	// Migrated marks existing mail moved in from elsewhere (`letterbox import`): it is kept
	// as it was, never refused for its shape (see SpoolOptions). New mail (LMTP, `letterbox
	// deliver`, APPEND) leaves it false. DeliverSpooled ignores it: Spool decided.
	Migrated bool
	// AnyOctets and Binary are as in SpoolOptions (IMAP APPEND).
	AnyOctets bool
	Binary    bool
}

// SpoolOptions says how Spool takes a message.
type SpoolOptions struct {
	// Migrated marks existing mail moved in from elsewhere (`letterbox import`): it is kept
	// as it was, whatever its header size and MIME nesting, and only its description is cut
	// short beyond the parse bounds (internal/mailmsg/parse.go). New mail leaves it false and is refused
	// with a *ContentLimitError beyond Options.MaxHeaderSize and Options.MaxMIMEDepth.
	Migrated bool
	// AnyOctets stores octets without a header section too (IMAP APPEND: the parse is for
	// the description, not a gate); without it they are refused with ErrNotMessage (LMTP
	// and `letterbox deliver`, which refuse what is not a message: 554 5.6.0, exit 65).
	AnyOctets bool
	// Binary stores the octets exactly as given, line endings included: no CRLF
	// normalisation and no CRLF added at the end (an IMAP literal8 APPEND, RFC 3516 §4.2).
	Binary bool
}

// ContentLimitError refuses a new message for its shape. errors.Is matches it against Err;
// errors.As gives the limit, for the protocol's answer.
type ContentLimitError = mailmsg.ContentLimitError

// Delivered reports where Deliver stored a message.
type Delivered struct {
	MailboxID   int64
	UIDValidity uint32
	UID         uint32
	Size        int64
	ModSeq      int64
}

// ChangeKind is what a change-log row records.
type ChangeKind uint8

const (
	ChangeAppend        ChangeKind = iota + 1 // a message arrived (Deliver, Copy, Move)
	ChangeFlags                               // a message's flags changed
	ChangeExpunge                             // a message was removed (the tombstone)
	ChangeMailboxCreate                       // a mailbox was created
	ChangeMailboxRename                       // a mailbox was renamed
	ChangeMailboxDelete                       // a mailbox was deleted
)

// Change is one change-log row.
type Change struct {
	ModSeq    int64
	AccountID int64
	MailboxID int64
	UID       uint32 // 0 for mailbox changes
	Kind      ChangeKind
}

// Body is a stored raw message (or part of one), streamed from the store.
type Body interface {
	io.Reader
	io.ReaderAt
	io.Closer
	Size() int64
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}
