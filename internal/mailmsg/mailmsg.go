// Package mailmsg describes an Internet message (RFC 5322, MIME RFC 2045-2049) as IMAP
// needs it: the ENVELOPE (RFC 3501 §7.4.2), the MIME tree with every part's byte offsets
// (BODYSTRUCTURE, BODY[n]), the decoded text SEARCH compares with, and the RFC 8970
// preview. It reads the octets once, streaming, and knows no database: the store calls
// it while a message is spooled and keeps what it returns.
//
// It imports only the standard library and go-message; store, internal/protocol/imap and the
// rest may import it.
package mailmsg

// Bounds of the parse, for the store's defaults and tests (parse.go).
const (
	MaxDepth       = maxDepth
	MaxParts       = maxParts
	MaxHeaderBytes = maxHeaderBytes
	MaxTextBytes   = maxTextBytes
)

// DecodeHeader decodes the RFC 2047 encoded-words of a header field's value, in any
// charset go-message knows.
func DecodeHeader(v string) (string, error) { return wordDecoder.DecodeHeader(v) }
