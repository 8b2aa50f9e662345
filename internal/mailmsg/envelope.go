package mailmsg

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// The ENVELOPE of every message is stored at delivery (bodies.envelope) and decoded by
// every FETCH ENVELOPE, once per message: on the hot path of a client's first listing of a
// folder. Stores written before this file existed hold it as JSON; newer ones in the
// compact form below, which decodes without reflection. Both are read: a JSON value starts
// with '{', the compact form with envelopeV1.
//
//	envelopeV1
//	date:       uvarint 0 (none), or 1 then varint Unix seconds, varint zone offset (seconds)
//	subject:    string
//	from, sender, reply-to, to, cc, bcc: each uvarint count, then per address
//	            name, mailbox, host: strings (envelopeV2: name, route, mailbox, host)
//	in-reply-to: uvarint count, then strings
//	message-id: string
//
// A string is a uvarint length and its UTF-8 octets. envelopeV2 adds each address's
// source route (Address.Route); envelopeV1, without it, is still read.
const (
	envelopeV1 = 1
	envelopeV2 = 2
)

// encodeEnvelope returns the stored form of env.
func encodeEnvelope(env *Envelope) []byte {
	b := make([]byte, 0, 256)
	b = append(b, envelopeV2)
	if env.Date.IsZero() {
		b = binary.AppendUvarint(b, 0)
	} else {
		_, off := env.Date.Zone()
		b = binary.AppendUvarint(b, 1)
		b = binary.AppendVarint(b, env.Date.Unix())
		b = binary.AppendVarint(b, int64(off))
	}
	b = appendString(b, env.Subject)
	for _, list := range [][]Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, a := range list {
			b = appendString(appendString(appendString(appendString(b, a.Name), a.Route), a.Mailbox), a.Host)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(env.InReplyTo)))
	for _, id := range env.InReplyTo {
		b = appendString(b, id)
	}
	return appendString(b, env.MessageID)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

var errBadEnvelope = errors.New("malformed stored envelope")

// DecodeEnvelope reads either stored form of an envelope into env.
func DecodeEnvelope(data []byte, env *Envelope) error {
	if len(data) > 0 && data[0] == '{' {
		return json.Unmarshal(data, env)
	}
	if len(data) == 0 || data[0] != envelopeV1 && data[0] != envelopeV2 {
		return errBadEnvelope
	}
	withRoute := data[0] == envelopeV2
	d := envelopeDecoder{data: data[1:]}
	*env = Envelope{}
	if d.uvarint() == 1 {
		unix, off := d.varint(), d.varint()
		env.Date = time.Unix(unix, 0).In(FixedZone(int(off)))
	}
	env.Subject = d.string()
	for _, list := range []*[]Address{&env.From, &env.Sender, &env.ReplyTo, &env.To, &env.Cc, &env.Bcc} {
		n := d.count()
		if n == 0 {
			continue
		}
		*list = make([]Address, n)
		for i := range *list {
			a := &(*list)[i]
			a.Name = d.string()
			if withRoute {
				a.Route = d.string()
			}
			a.Mailbox, a.Host = d.string(), d.string()
		}
	}
	if n := d.count(); n > 0 {
		env.InReplyTo = make([]string, n)
		for i := range env.InReplyTo {
			env.InReplyTo[i] = d.string()
		}
	}
	env.MessageID = d.string()
	if d.bad || len(d.data) != 0 {
		return errBadEnvelope
	}
	return nil
}

// envelopeDecoder reads the compact form; a read past the end sets bad and yields zeros.
type envelopeDecoder struct {
	data []byte
	bad  bool
}

func (d *envelopeDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.bad, d.data = true, nil
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *envelopeDecoder) varint() int64 {
	v, n := binary.Varint(d.data)
	if n <= 0 {
		d.bad, d.data = true, nil
		return 0
	}
	d.data = d.data[n:]
	return v
}

// count reads a number of items, each of which takes at least one octet.
func (d *envelopeDecoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.data)) {
		d.bad, d.data = true, nil
		return 0
	}
	return int(n)
}

func (d *envelopeDecoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.data)) {
		d.bad, d.data = true, nil
		return ""
	}
	s := string(d.data[:n])
	d.data = d.data[n:]
	return s
}

// zones caches time.FixedZone by offset: a message's dates (INTERNALDATE, the Date
// header) are read with their zone for every listing, and a zone is an allocation each.
var zones sync.Map // offset seconds -> *time.Location

// FixedZone is time.FixedZone("", offset), one value per offset.

func FixedZone(offset int) *time.Location {
	if l, ok := zones.Load(offset); ok {
		return l.(*time.Location)
	}
	l, _ := zones.LoadOrStore(offset, time.FixedZone("", offset))
	return l.(*time.Location)
}
