package store

import "github.com/letterbox-mail/letterbox/internal/mailmsg"

// The store's own names for what it uses of internal/mailmsg most, kept from when the
// parse lived here: code that reads stored envelopes or takes a delivery's parse names
// them so.

// parsed is what delivery computes once from a message (mailmsg.Parse).
type parsed = mailmsg.Parsed

// decodeEnvelope reads either stored form of an envelope into env.
func decodeEnvelope(data []byte, env *Envelope) error { return mailmsg.DecodeEnvelope(data, env) }
