package imap

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// connState is a session's state (RFC 3501 §3).
type connState uint8

const (
	stateNotAuthenticated connState = 1 << iota
	stateAuthenticated
	stateSelected
)

const (
	anyState  = stateNotAuthenticated | stateAuthenticated | stateSelected
	authState = stateAuthenticated | stateSelected
)

func (st connState) String() string {
	switch st {
	case stateNotAuthenticated:
		return "not authenticated"
	case stateAuthenticated:
		return "authenticated"
	case stateSelected:
		return "selected"
	}
	return "unknown"
}

// commandSpec is one command of the table.
type commandSpec struct {
	handler func(s *session, cmd *command) error
	states  connState // the states it may run in
	// capability is the extension that brings the command; announcing it is announcing
	// the command, and the command exists only while it is announced. "" for RFC 3501's.
	capability imap.Cap
	// metric names the command in letterbox_commands_total and the logout line's count;
	// "" for those not counted (CAPABILITY, NOOP, CHECK, LOGOUT, STARTTLS, ENABLE).
	metric string
	// noExpunge: the poll after the command may not announce expunges (RFC 3501 §7.4.1).
	noExpunge bool
	// noPoll: no poll after the command (it changes the selection, or did its own).
	noPoll bool
	// readsConn: the handler reads the connection itself, so nothing may read ahead
	// while it runs (readahead.go).
	readsConn bool
}

// commands is the command table. The parser (parse.go) knows the grammar of each; the
// states, capabilities and handlers are here.
var commands map[string]commandSpec

func init() {
	commands = map[string]commandSpec{
		// RFC 3501 §6.1: any state.
		"CAPABILITY": {handler: handleCapability, states: anyState},
		"NOOP":       {handler: handleNoop, states: anyState},
		"LOGOUT":     {handler: handleLogout, states: anyState, noPoll: true},
		"ID":         {handler: handleID, states: anyState, capability: imap.CapID, metric: "id"}, // RFC 2971, id.go
		// §6.2: not authenticated.
		"STARTTLS":     {handler: handleStartTLS, states: stateNotAuthenticated, capability: imap.CapStartTLS, noPoll: true, readsConn: true},
		"LOGIN":        {handler: handleLogin, states: stateNotAuthenticated, metric: "login", noPoll: true},
		"AUTHENTICATE": {handler: handleAuthenticate, states: stateNotAuthenticated, metric: "authenticate", noPoll: true, readsConn: true},
		// §6.3: authenticated (and selected).
		"ENABLE":      {handler: handleEnable, states: authState, capability: imap.CapEnable},
		"NAMESPACE":   {handler: handleNamespace, states: authState, capability: imap.CapNamespace, metric: "namespace"},
		"SELECT":      {handler: uidCommand(handleSelect), states: authState, metric: "select", noPoll: true},
		"EXAMINE":     {handler: uidCommand(handleSelect), states: authState, metric: "examine", noPoll: true},
		"CREATE":      {handler: handleCreate, states: authState, metric: "create"},
		"DELETE":      {handler: handleDelete, states: authState, metric: "delete"},
		"RENAME":      {handler: handleRename, states: authState, metric: "rename"},
		"SUBSCRIBE":   {handler: handleSubscribe, states: authState, metric: "subscribe"},
		"UNSUBSCRIBE": {handler: handleSubscribe, states: authState, metric: "unsubscribe"},
		"LIST":        {handler: handleList, states: authState, metric: "list"},
		"LSUB":        {handler: handleList, states: authState, metric: "list"},
		"STATUS":      {handler: handleStatus, states: authState, metric: "status"},
		"APPEND":      {handler: handleAppend, states: authState, metric: "append", readsConn: true},
		"IDLE":        {handler: handleIdle, states: authState, capability: imap.CapIdle, metric: "idle", noPoll: true, readsConn: true},
		// RFC 4978, compress.go; RFC 8437, unauthenticate.go.
		"COMPRESS":       {handler: handleCompress, states: authState, capability: capCompressDeflate, metric: "compress", readsConn: true},
		"UNAUTHENTICATE": {handler: handleUnauthenticate, states: authState, capability: imap.CapUnauthenticate, metric: "unauthenticate", noPoll: true},
		// §6.4: selected. seqCommand and uidCommand refuse sequence numbers once UIDONLY
		// is enabled (RFC 9586, uidonly.go).
		"CHECK":       {handler: handleNoop, states: stateSelected},
		"CLOSE":       {handler: handleClose, states: stateSelected, metric: "close", noPoll: true},
		"UNSELECT":    {handler: handleClose, states: stateSelected, capability: imap.CapUnselect, metric: "unselect", noPoll: true},
		"EXPUNGE":     {handler: handleExpunge, states: stateSelected, metric: "expunge"},
		"UID EXPUNGE": {handler: handleExpunge, states: stateSelected, capability: imap.CapUIDPlus, metric: "uid expunge"},
		"SEARCH":      {handler: seqCommand(handleSearch), states: stateSelected, metric: "search", noExpunge: true},
		"UID SEARCH":  {handler: uidCommand(handleSearch), states: stateSelected, metric: "uid search", noExpunge: true},
		"FETCH":       {handler: seqCommand(handleFetch), states: stateSelected, metric: "fetch", noExpunge: true},
		"UID FETCH":   {handler: handleFetch, states: stateSelected, metric: "uid fetch", noExpunge: true},
		"STORE":       {handler: seqCommand(handleStore), states: stateSelected, metric: "store", noExpunge: true},
		"UID STORE":   {handler: handleStore, states: stateSelected, metric: "uid store", noExpunge: true},
		"COPY":        {handler: seqCommand(handleCopy), states: stateSelected, metric: "copy"},
		"UID COPY":    {handler: handleCopy, states: stateSelected, metric: "uid copy"},
		"MOVE":        {handler: seqCommand(handleMove), states: stateSelected, capability: imap.CapMove, metric: "move"},
		"UID MOVE":    {handler: handleMove, states: stateSelected, capability: imap.CapMove, metric: "uid move"},
		// RFC 5256 (sort.go).
		"SORT":       {handler: seqCommand(handleSort), states: stateSelected, capability: imap.CapSort, metric: "sort", noExpunge: true},
		"UID SORT":   {handler: uidCommand(handleSort), states: stateSelected, capability: imap.CapSort, metric: "uid sort", noExpunge: true},
		"THREAD":     {handler: seqCommand(handleThread), states: stateSelected, capability: capThreadOrderedSubject, metric: "thread", noExpunge: true},
		"UID THREAD": {handler: uidCommand(handleThread), states: stateSelected, capability: capThreadOrderedSubject, metric: "uid thread", noExpunge: true},
		// RFC 5267 §4.3.5 (context.go).
		"CANCELUPDATE": {handler: handleCancelUpdate, states: stateSelected, capability: capContextSearch, metric: "cancelupdate"},
		// RFC 9208 (quota.go).
		"GETQUOTA":     {handler: handleGetQuota, states: authState, capability: capQuota, metric: "getquota"},
		"GETQUOTAROOT": {handler: handleGetQuotaRoot, states: authState, capability: capQuota, metric: "getquotaroot"},
		"SETQUOTA":     {handler: handleSetQuota, states: authState, capability: capQuota, metric: "setquota"},
	}
}

// Extensions announced that bring no command of their own: they change what existing
// commands take or answer, in the parser (LITERAL+, SASL-IR, ESEARCH, SEARCHRES,
// LIST-EXTENDED, LIST-STATUS, CREATE-SPECIAL-USE, BINARY, STATUS=SIZE, UTF8=ACCEPT) or
// in the backend (CHILDREN, SPECIAL-USE, APPENDLIMIT). IMAP4rev2 is the ENABLE-able
// revision (RFC 9051 §6.3.1).
var (
	// announcedBeforeLogin come first, in this order, in every state.
	announcedBeforeLogin = []imap.Cap{imap.CapIMAP4rev1, imap.CapIMAP4rev2, imap.CapSASLIR, imap.CapLiteralMinus, imap.CapID}
	// announcedAfterLogin follow them once logged in.
	announcedAfterLogin = []imap.Cap{
		imap.CapLiteralPlus, imap.CapUTF8Accept, imap.CapESearch, imap.CapSearchRes,
		imap.CapListExtended, imap.CapListStatus, imap.CapStatusSize, imap.CapBinary,
		imap.CapChildren, imap.CapSpecialUse, imap.CapCreateSpecialUse,
		imap.CapCondStore, imap.CapQResync, // RFC 7162 (condstore.go, qresync.go)
		capThreadReferences, imap.CapSortDisplay, capESort, capQuotaStorage, capQuotaMessage, imap.CapMultiAppend,
		// WITHIN (RFC 5032), SAVEDATE (RFC 8514), PREVIEW (RFC 8970), PARTIAL (RFC 9394),
		// OBJECTID (RFC 8474): searchext.go, fetchext.go, partial.go, objectid.go.
		"WITHIN", "SAVEDATE", "PREVIEW", "PARTIAL", "OBJECTID",
		capContextSort,  // RFC 5267 §4 (context.go); CONTEXT=SEARCH comes with CANCELUPDATE
		imap.CapUIDOnly, // RFC 9586 (uidonly.go)
	}
	// enableable are what ENABLE turns on (RFC 5161 §3.1).
	enableable = []imap.Cap{imap.CapIMAP4rev2, imap.CapUTF8Accept, imap.CapCondStore, imap.CapQResync, imap.CapUIDOnly}
)

// saslMechanisms are announced as AUTH= where plaintext credentials are allowed.
var saslMechanisms = []string{"PLAIN", "LOGIN"}

// state is the session's state now.
func (s *session) state() connState {
	switch {
	case s.acct == nil:
		return stateNotAuthenticated
	case s.sel == nil:
		return stateAuthenticated
	}
	return stateSelected
}

// announced says whether capability c is announced to the session now.
func (s *session) announced(c imap.Cap) bool {
	switch c {
	case imap.CapStartTLS:
		return s.mayStartTLS()
	}
	for _, a := range s.capabilities() {
		if a == c {
			return true
		}
	}
	return false
}

// mayStartTLS: TLS is configured, the session is not TLS yet, and not logged in (nor
// compressed: after UNAUTHENTICATE, TLS cannot start beneath the deflate stream).
func (s *session) mayStartTLS() bool {
	return s.srv.opts.TLSConfig != nil && s.tlsState == nil && s.acct == nil && s.compressed == nil
}

// capabilities lists what CAPABILITY and the greeting announce now: the base set, the
// capabilities that bring commands of the table the session may use in some state, and
// the authentication capabilities (RFC 3501 §6.2.1, §6.2.3, RFC 4959).
func (s *session) capabilities() []imap.Cap {
	caps := append([]imap.Cap(nil), announcedBeforeLogin...)
	if s.mayStartTLS() {
		caps = append(caps, imap.CapStartTLS)
	}
	if s.acct == nil {
		if s.plaintextAllowed() {
			for _, m := range saslMechanisms {
				caps = append(caps, imap.Cap("AUTH="+m))
			}
		} else {
			caps = append(caps, imap.CapLoginDisabled)
		}
		return caps
	}
	seen := map[imap.Cap]bool{imap.CapStartTLS: true, imap.CapID: true}
	for _, name := range commandOrder {
		c := commands[name].capability
		if c != "" && !seen[c] {
			seen[c] = true
			caps = append(caps, c)
		}
	}
	caps = append(caps, announcedAfterLogin...)
	caps = append(caps, imap.Cap(fmt.Sprintf("APPENDLIMIT=%d", s.srv.opts.AppendLimit)))
	if c := s.messageLimitCap(); c != "" {
		caps = append(caps, c) // RFC 9738 §3 (messagelimit.go)
	}
	return caps
}

// commandOrder is the table's names in a fixed order, for CAPABILITY.
var commandOrder = []string{"ENABLE", "NAMESPACE", "IDLE", "UNSELECT", "UID EXPUNGE", "MOVE", "SORT", "CANCELUPDATE", "THREAD", "GETQUOTA", "COMPRESS", "UNAUTHENTICATE"}

// capabilityList is the capabilities as CAPABILITY writes them.
func (s *session) capabilityList() string {
	caps := s.capabilities()
	parts := make([]string, len(caps))
	for i, c := range caps {
		parts[i] = string(c)
	}
	return strings.Join(parts, " ")
}

// lookupCommand finds cmd in the table and checks that the session may run it now.
func (s *session) lookupCommand(cmd *command) (commandSpec, *imap.Error) {
	spec, ok := commands[cmd.name]
	if !ok || (spec.capability != "" && !s.announced(spec.capability) && !(spec.capability != imap.CapStartTLS && s.acct == nil)) {
		return spec, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown command " + truncate(cmd.name, 32)}
	}
	if st := s.state(); spec.states&st == 0 {
		text := "Command not allowed in the " + st.String() + " state"
		if st == stateNotAuthenticated {
			text = "Not authenticated: log in first"
		} else if spec.states == stateSelected {
			text = "No mailbox selected"
		}
		return spec, &imap.Error{Type: imap.StatusResponseTypeBad, Text: text}
	}
	return spec, nil
}
