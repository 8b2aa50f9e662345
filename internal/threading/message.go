package threading

import (
	"cmp"
	"time"
)

// Message is what SORT and THREAD need to know of one message of the mailbox.
type Message struct {
	// Seq is the message sequence number. It breaks ties (RFC 5256 §2.2 and §3).
	Seq uint32
	// UID is the message's UID; the algorithms do not look at it, it is carried for
	// the caller's mapping (UID SORT, UID THREAD).
	UID uint32
	// InternalDate is the INTERNALDATE (arrival) of the message: the ARRIVAL criterion,
	// and the sent date when Date is zero.
	InternalDate time.Time
	// Date is the Date header field; the zero time when it is missing or unparseable
	// (store.Envelope.Date).
	Date time.Time
	// Subject is the Subject header field with its RFC 2047 encoded-words decoded to
	// UTF-8 (store.Envelope.Subject); "" when absent.
	Subject string
	// From, To and Cc are the first address of each field, as in the ENVELOPE; the zero
	// Address when the field is absent or empty.
	From, To, Cc Address
	// Size is RFC822.SIZE.
	Size int64
	// MessageID is the Message-ID header field's msg-id, with or without its angle
	// brackets; "" when absent.
	MessageID string
	// InReplyTo lists the msg-ids of the In-Reply-To field (store.Envelope.InReplyTo);
	// only the first is used, and only when References has none (RFC 5256 §4).
	InReplyTo []string
	// References lists the msg-ids of the References field in their order (oldest
	// first); mailmsg.ParseMessageIDs extracts them from the raw field.
	References []string
}

// Address is one address as the IMAP ENVELOPE gives it (RFC 3501 §7.4.2), like
// store.Address. For group syntax the first address is the group's start: Mailbox holds
// the group name and Host is empty.
type Address struct {
	Name    string // display name, decoded from RFC 2047
	Mailbox string // addr-mailbox: the local part
	Host    string // addr-host: the domain
}

// display is the SORT=DISPLAY sort value of an address (RFC 5957 §3): the display name
// (addr-name, RFC 2047-decoded) when it is not empty; else addr-mailbox "@" addr-host
// when both are there; else addr-mailbox alone (a group's start, or an address without
// a domain); else the empty string.
func (a Address) display() string {
	if a.Name != "" {
		return a.Name
	}
	if a.Host == "" {
		return a.Mailbox
	}
	return a.Mailbox + "@" + a.Host
}

// sentDate is a message's sent date as an instant (RFC 5256 §2.2), in a form that
// compares fast: seconds since the epoch and nanoseconds.
type sentDate struct {
	sec  int64
	nsec int32
}

func instant(t time.Time) sentDate {
	return sentDate{sec: t.Unix(), nsec: int32(t.Nanosecond())}
}

// sent returns the sent date of m: RFC 5256 §2.2: the Date header, or INTERNALDATE
// "if the sent date cannot be determined (a Date: header is missing or cannot be
// parsed)".
func (m *Message) sent() sentDate {
	if m.Date.IsZero() {
		return instant(m.InternalDate)
	}
	return instant(m.Date)
}

func (a sentDate) compare(b sentDate) int {
	if c := cmp.Compare(a.sec, b.sec); c != 0 {
		return c
	}
	return cmp.Compare(a.nsec, b.nsec)
}
