package mailmsg

import (
	"errors"
	"fmt"
	"time"
)

// Errors of the parse. store re-exports them (store.ErrNotMessage, ...), so callers test
// either name with errors.Is; the texts keep the "store:" they were known by.
var (
	ErrNotMessage = errors.New("store: not an RFC 5322 message")
	// ErrHeaderTooBig and ErrNestingTooDeep refuse new mail for its shape (a header section
	// above Limits.HeaderSize, MIME nesting deeper than Limits.MIMEDepth). They come inside
	// a *ContentLimitError, which names the limit.
	ErrHeaderTooBig   = errors.New("store: message header too big")
	ErrNestingTooDeep = errors.New("store: MIME nesting too deep")
)

// Address is one mailbox of an address list, as IMAP ENVELOPE carries it (RFC 3501 §7.4.2).
//
// A group (RFC 5322 §3.4) is a start marker with only Mailbox, the group's name, then its
// members, then the zero Address as end marker (RFC 3501 §7.4.2).
type Address struct {
	Name    string // display name, decoded from RFC 2047
	Route   string `json:",omitempty"` // RFC 822 source route ("@a,@b"), mostly ""
	Mailbox string // local part
	Host    string // domain
}

// Envelope is the IMAP ENVELOPE of a message, computed at delivery (RFC 3501 §7.4.2).
// Text fields are decoded to UTF-8; IMAP encodes them again on the wire.
type Envelope struct {
	Date      time.Time // zero if missing or unparseable
	Subject   string
	From      []Address
	Sender    []Address // defaults to From when absent, as RFC 3501 requires
	ReplyTo   []Address // defaults to From when absent
	To        []Address
	Cc        []Address
	Bcc       []Address
	InReplyTo []string // message ids, with angle brackets
	MessageID string   // with angle brackets
}

// Part is one node of a message's MIME tree: what IMAP BODYSTRUCTURE is built from, plus
// the byte offsets of the part inside the stored message so that BODY[n], BODY[n.HEADER],
// BODY[n.TEXT] and BODY[n.MIME] can be streamed without parsing again.
type Part struct {
	Type, Subtype     string            // lower case, e.g. "text", "plain"
	Params            map[string]string // Content-Type parameters, keys lower case
	ID                string            // Content-ID
	Description       string            // Content-Description
	Encoding          string            // Content-Transfer-Encoding, upper case; "7BIT" if absent
	Size              int64             // octets of the part's body
	Lines             int64             // lines of the body, for text/* and message/rfc822
	MD5               string            // Content-MD5
	Disposition       string            // lower case; "" if absent
	DispositionParams map[string]string // keys lower case
	Language          []string
	Location          string

	Children []Part // for multipart/*: the parts, in order

	// For message/rfc822: the enclosed message's envelope and structure.
	Envelope *Envelope
	Message  *Part

	// Offsets in the stored (CRLF) message: the part's header starts at HeaderStart, its body
	// at BodyStart, and the part ends at End (exclusive). For the top-level part HeaderStart
	// is 0 and End is the message size.
	HeaderStart, BodyStart, End int64
}

// ContentLimitError refuses a new message for its shape. errors.Is matches it against Err;
// errors.As gives the limit, for the protocol's answer.
type ContentLimitError struct {
	Err   error // ErrHeaderTooBig or ErrNestingTooDeep
	Limit int64 // octets of one header section, or levels of MIME nesting
}

func (e *ContentLimitError) Error() string {
	if e.Err == ErrNestingTooDeep {
		return fmt.Sprintf("store: MIME nesting deeper than %d levels", e.Limit)
	}
	return fmt.Sprintf("store: a header section larger than %d octets", e.Limit)
}

func (e *ContentLimitError) Unwrap() error { return e.Err }
