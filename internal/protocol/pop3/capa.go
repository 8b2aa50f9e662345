package pop3

import (
	"strconv"
	"strings"
	"time"
)

// implementation is the IMPLEMENTATION capability's argument (RFC 2449 §6.9).
const implementation = "Letterbox"

// capabilities lists what this session offers now (RFC 2449 §6). Capabilities of the
// AUTHORIZATION state are announced in both states (RFC 2449 §5); those that depend on
// the connection (USER, SASL, STLS) follow whether plaintext is allowed and TLS is active.
func (s *session) capabilities() []string {
	caps := []string{"TOP"}
	plain := s.plaintextAllowed()
	if plain {
		caps = append(caps, "USER")
	}
	caps = append(caps, "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
		"EXPIRE "+s.srv.opts.Expire)
	if d := s.srv.opts.LoginDelay; d > 0 {
		caps = append(caps, "LOGIN-DELAY "+strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
	if plain {
		caps = append(caps, "SASL "+strings.Join(saslMechanisms, " "))
	}
	if s.stlsAvailable() {
		caps = append(caps, "STLS")
	}
	// RFC 6856 §2: the USER tag says USER/PASS take UTF-8 after the UTF8 command.
	caps = append(caps, "UTF8 USER", "IMPLEMENTATION "+implementation)
	return caps
}

// cmdCapa handles CAPA (RFC 2449 §5).
func (s *session) cmdCapa(arg string) error {
	if !s.noArgs("CAPA", arg) {
		return nil
	}
	s.okReply("Capability list follows")
	for _, c := range s.capabilities() {
		s.reply(c)
	}
	s.reply(".")
	return nil
}
