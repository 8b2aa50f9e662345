// Package api is Letterbox's JSON API for integration tests, mounted under /api/v1/ on the
// HTTP listener when api.enabled is set (`letterbox serve --testing` sets it). A test in
// any language creates and deletes users, delivers raw messages, lists mailboxes and
// messages with their IMAP flags, UID and the UIDL POP3 shows, resets an account or the
// whole store, lists the live sessions and reads the wire traces (internal/trace).
// docs/api.yaml (OpenAPI 3.0) describes every route.
//
// Implementation notes:
//
//   - The API is a view of the store, like the protocols: it reads and writes only through
//     the store (the Store interface below), and knows POP3 only through internal/maildrop's
//     rules (FormatUIDL and InMaildrop), the ones internal/protocol/pop3 serves by, so its UIDLs are
//     exactly the ones a POP3 session shows.
//   - Every request carries "Authorization: Bearer <api.token>", compared in constant time.
//     With no token configured the API refuses everything, unless Options.OpenOnLoopback
//     (serve --testing) lets loopback clients in without one.
//   - Every answer is JSON, errors included ({"error": "..."}), with the status code that
//     the store's sentinel error calls for (errorStatus); only GET .../raw answers with the
//     message itself (message/rfc822) and GET /api/v1/traces/{name} the transcript
//     (text/plain).
//   - Routes use Go 1.22 ServeMux patterns; a mailbox name with "/" (Work/2024) travels
//     escaped in one path segment (Work%2F2024).
//   - Messages are delivered exactly as given (no Return-Path or Delivered-To is added), so
//     a test knows the stored bytes; the store CRLF-normalises them, as it does all mail.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/letterbox-mail/letterbox/internal/datasize"
	"github.com/letterbox-mail/letterbox/internal/localhttp"
	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/mailmsg"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1/"

// Store is what the API needs of the store; *store.Store implements it.
type Store interface {
	CreateAccount(ctx context.Context, a store.NewAccount) (store.Account, error)
	DeleteAccount(ctx context.Context, address string) error
	Accounts(ctx context.Context) ([]store.Account, error)
	LookupAccount(ctx context.Context, address string) (store.Account, error)
	Deliver(ctx context.Context, accountID int64, r io.Reader, opts store.DeliverOptions) (store.Delivered, error)
	Mailboxes(ctx context.Context, accountID int64) ([]store.Mailbox, error)
	MailboxByName(ctx context.Context, accountID int64, name string) (store.Mailbox, error)
	CreateMailbox(ctx context.Context, accountID int64, name, specialUse string) (store.Mailbox, error)
	DeleteMailbox(ctx context.Context, accountID int64, name string) error
	Status(ctx context.Context, mailboxID int64) (store.MailboxStatus, error)
	Messages(ctx context.Context, mailboxID int64, ranges ...store.UIDRange) ([]store.Message, error)
	Metadata(ctx context.Context, mailboxID int64, ranges ...store.UIDRange) ([]store.Metadata, error)
	Expunge(ctx context.Context, mailboxID int64, uids []uint32) ([]uint32, error)
	OpenMessage(ctx context.Context, mailboxID int64, uid uint32) (store.Body, error)
}

// Options configures the API.
type Options struct {
	Store Store
	// Token is the bearer token requests must carry (api.token).
	Token string
	// OpenOnLoopback lets clients on loopback in without a token when Token is "" (serve
	// --testing). A configured token is always required.
	OpenOnLoopback bool
	// UIDLFormat and DeleteMode are pop3.uidl_format and pop3.delete, so that the API shows
	// the UIDLs, and only the messages, a POP3 session shows.
	UIDLFormat string
	DeleteMode string
	// Folders are the folders every new account gets besides INBOX (name -> special use),
	// as config.Folders.Store gives them; reset keeps (or recreates) them and deletes others.
	Folders map[string]string
	// Sessions lists the live sessions for GET /api/v1/sessions; nil lists none.
	Sessions SessionLister
	// TraceDir is trace.dir, whose transcripts GET /api/v1/traces lists and serves; ""
	// means tracing is off.
	TraceDir string
	Logger   *slog.Logger
}

// route is one endpoint.
type route struct {
	pattern string
	handle  func(*handler, http.ResponseWriter, *http.Request) error
}

var routes = []route{
	{"POST /api/v1/users", (*handler).createUser},
	{"GET /api/v1/users", (*handler).listUsers},
	{"DELETE /api/v1/users/{address}", (*handler).deleteUser},
	{"POST /api/v1/users/{address}/messages", (*handler).deliver},
	{"GET /api/v1/users/{address}/mailboxes", (*handler).listMailboxes},
	{"GET /api/v1/users/{address}/mailboxes/{name}/messages", (*handler).listMessages},
	{"GET /api/v1/users/{address}/mailboxes/{name}/messages/{uid}/raw", (*handler).rawMessage},
	{"POST /api/v1/users/{address}/reset", (*handler).resetUser},
	{"POST /api/v1/reset", (*handler).resetAll},
	{"GET /api/v1/sessions", (*handler).listSessions},
	{"GET /api/v1/traces", (*handler).listTraces},
	{"GET /api/v1/traces/{name}", (*handler).getTrace},
}

// Routes lists the patterns Register mounts (method and path, as http.ServeMux takes them).
func Routes() []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.pattern
	}
	return out
}

type handler struct {
	opts Options
	log  *slog.Logger
}

// Register mounts the API on mux. It checks the UIDL format, so that a bad one fails at
// start rather than on the first request.
func Register(mux *http.ServeMux, opts Options) error {
	if opts.Store == nil {
		return errors.New("api: Options.Store is required")
	}
	if _, err := maildrop.FormatUIDL(opts.UIDLFormat, 1, 1); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	h := &handler{opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for _, rt := range routes {
		mux.Handle(rt.pattern, h.wrap(rt.handle))
	}
	// Anything else under the prefix is a JSON 404 (after authentication, so that the API
	// does not tell strangers which routes exist).
	mux.Handle(Prefix, h.wrap(func(_ *handler, _ http.ResponseWriter, r *http.Request) error {
		return errNotFound("no such endpoint: " + r.Method + " " + r.URL.Path + " (see docs/api.yaml)")
	}))
	return nil
}

// httpError is an error with the status code to answer it with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errBadRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func errNotFound(msg string) error { return &httpError{http.StatusNotFound, msg} }

// errorStatus maps an error to its status code: the store's sentinels to what a client can
// act on, anything else to 500.
func errorStatus(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, store.ErrNoSuchAccount), errors.Is(err, store.ErrNoSuchMailbox),
		errors.Is(err, store.ErrNoSuchMessage):
		return http.StatusNotFound
	case errors.Is(err, store.ErrAccountExists), errors.Is(err, store.ErrMailboxExists),
		errors.Is(err, store.ErrMailboxProtected), errors.Is(err, store.ErrAliasExists):
		return http.StatusConflict
	case errors.Is(err, store.ErrTooBig):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, store.ErrOverQuota):
		return http.StatusInsufficientStorage
	case errors.Is(err, store.ErrNotMessage), errors.Is(err, store.ErrHeaderTooBig),
		errors.Is(err, store.ErrNestingTooDeep):
		// A message refused for its content (a header section or MIME nesting beyond the
		// limits): the request was understood, the message cannot be taken.
		return http.StatusUnprocessableEntity
	case errors.Is(err, store.ErrTemporary):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// wrap adds authentication and turns a handler's error into a JSON error answer.
func (h *handler) wrap(fn func(*handler, http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.authorize(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="letterbox"`)
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if err := fn(h, w, r); err != nil {
			status := errorStatus(err)
			msg := err.Error()
			if status == http.StatusInternalServerError {
				h.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, status, strings.TrimPrefix(msg, "store: "))
		}
	})
}

// authorize checks the bearer token (RFC 6750 §2.1).
func (h *handler) authorize(r *http.Request) error {
	if h.opts.Token == "" {
		if !h.opts.OpenOnLoopback {
			return errors.New("the API needs api.token to be set (or serve --testing, from loopback)")
		}
		return localhttp.Check(r)
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return errors.New("missing bearer token")
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(h.opts.Token)) != 1 {
		return errors.New("wrong bearer token")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "<id@host>", not "\u003cid@host\u003e"
	enc.Encode(v)            // the client may be gone; nothing to do about it
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, Error{Error: msg})
}

// --- users ---

// User is an account as the API shows it.
type User struct {
	Address   string    `json:"address"`
	Quota     int64     `json:"quota"` // bytes; 0: unlimited
	UsedBytes int64     `json:"used_bytes"`
	Messages  int64     `json:"messages"`
	Created   time.Time `json:"created"`
}

func userOf(a store.Account) User {
	return User{Address: a.Address, Quota: a.QuotaBytes, UsedBytes: a.UsedBytes,
		Messages: a.Messages, Created: a.Created.UTC()}
}

// NewUser is the body of POST /api/v1/users. Quota is a number of bytes or a size such as
// "500MB" (as `user add --quota` takes it); absent or 0 means unlimited.
type NewUser struct {
	Address  string          `json:"address"`
	Password string          `json:"password"`
	Quota    json.RawMessage `json:"quota,omitempty"`
}

func (h *handler) createUser(w http.ResponseWriter, r *http.Request) error {
	var nu NewUser
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&nu); err != nil {
		return errBadRequest("body: want {\"address\": ..., \"password\": ..., \"quota\": ...}: %v", err)
	}
	if nu.Address == "" || strings.ContainsAny(nu.Address, " \t\r\n,/") {
		return errBadRequest("address %q: want an address such as alice@example.org, or a bare name", nu.Address)
	}
	if nu.Password == "" {
		return errBadRequest("password: must not be empty")
	}
	quota, err := parseQuota(nu.Quota)
	if err != nil {
		return err
	}
	a, err := h.opts.Store.CreateAccount(r.Context(), store.NewAccount{
		Address: nu.Address, Password: nu.Password, QuotaBytes: quota})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, userOf(a))
	return nil
}

func parseQuota(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err == nil {
		if n < 0 {
			return 0, errBadRequest("quota: must not be negative")
		}
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, errBadRequest("quota: want a number of bytes or a size such as \"500MB\"")
	}
	n, err := datasize.Parse(s)
	if err != nil || n < 0 {
		return 0, errBadRequest("quota %q: want a number of bytes or a size such as \"500MB\"", s)
	}
	return n, nil
}

// UserList is the answer of GET /api/v1/users.
type UserList struct {
	Users []User `json:"users"`
}

func (h *handler) listUsers(w http.ResponseWriter, r *http.Request) error {
	accts, err := h.opts.Store.Accounts(r.Context())
	if err != nil {
		return err
	}
	out := UserList{Users: make([]User, 0, len(accts))}
	for _, a := range accts {
		out.Users = append(out.Users, userOf(a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) deleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := h.opts.Store.DeleteAccount(r.Context(), r.PathValue("address")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) account(r *http.Request) (store.Account, error) {
	return h.opts.Store.LookupAccount(r.Context(), r.PathValue("address"))
}

// --- messages ---

// Delivered is the answer of POST /api/v1/users/{address}/messages.
type Delivered struct {
	Mailbox     string `json:"mailbox"`
	UID         uint32 `json:"uid"`
	UIDValidity uint32 `json:"uidvalidity"`
	UIDL        string `json:"uidl,omitempty"` // INBOX only
	Size        int64  `json:"size"`
}

func (h *handler) deliver(w http.ResponseWriter, r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		// Other types (curl --data-binary sends x-www-form-urlencoded) are taken as the message.
		if err == nil && (mt == "application/json" || mt == "multipart/form-data") {
			return &httpError{http.StatusUnsupportedMediaType,
				"send the raw message as the body, Content-Type: message/rfc822"}
		}
	}
	a, err := h.account(r)
	if err != nil {
		return err
	}
	mailbox := r.URL.Query().Get("mailbox")
	if mailbox == "" {
		mailbox = "INBOX"
	}
	mb, err := h.opts.Store.MailboxByName(r.Context(), a.ID, mailbox)
	if err != nil {
		return err
	}
	d, err := h.opts.Store.Deliver(r.Context(), a.ID, r.Body, store.DeliverOptions{Mailbox: mb.Name})
	if err != nil {
		return err
	}
	out := Delivered{Mailbox: mb.Name, UID: d.UID, UIDValidity: d.UIDValidity, Size: d.Size}
	if mb.Name == "INBOX" {
		out.UIDL = h.uidl(d.UID, d.UIDValidity)
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// uidl is the POP3 UIDL of an INBOX message (the format was checked by Register).
func (h *handler) uidl(uid, uidValidity uint32) string {
	s, _ := maildrop.FormatUIDL(h.opts.UIDLFormat, uid, uidValidity)
	return s
}

// Mailbox is one folder as GET .../mailboxes shows it.
type Mailbox struct {
	Name        string `json:"name"`
	SpecialUse  string `json:"special_use,omitempty"`
	UIDValidity uint32 `json:"uidvalidity"`
	UIDNext     uint32 `json:"uidnext"`
	Messages    int64  `json:"messages"`
	Unseen      int64  `json:"unseen"`
	Size        int64  `json:"size"`
}

// MailboxList is the answer of GET /api/v1/users/{address}/mailboxes.
type MailboxList struct {
	Mailboxes []Mailbox `json:"mailboxes"`
}

func (h *handler) listMailboxes(w http.ResponseWriter, r *http.Request) error {
	a, err := h.account(r)
	if err != nil {
		return err
	}
	mbs, err := h.opts.Store.Mailboxes(r.Context(), a.ID)
	if err != nil {
		return err
	}
	store.InboxFirst(mbs)
	out := MailboxList{Mailboxes: make([]Mailbox, 0, len(mbs))}
	for _, mb := range mbs {
		st, err := h.opts.Store.Status(r.Context(), mb.ID)
		if errors.Is(err, store.ErrNoSuchMailbox) {
			continue // deleted meanwhile
		} else if err != nil {
			return err
		}
		out.Mailboxes = append(out.Mailboxes, Mailbox{Name: st.Name, SpecialUse: st.SpecialUse,
			UIDValidity: st.UIDValidity, UIDNext: st.UIDNext, Messages: st.Messages,
			Unseen: st.Unseen, Size: st.Size})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Message is one message as GET .../messages shows it. UIDL is set for the INBOX messages
// that a POP3 session would list; Flags is never null.
type Message struct {
	UID          uint32    `json:"uid"`
	UIDL         string    `json:"uidl,omitempty"`
	Flags        []string  `json:"flags"`
	Size         int64     `json:"size"`
	InternalDate time.Time `json:"internal_date"`
	Subject      string    `json:"subject"`
	From         string    `json:"from"`
	MessageID    string    `json:"message_id"`
}

// MessageList is the answer of GET .../mailboxes/{name}/messages.
type MessageList struct {
	Mailbox     string    `json:"mailbox"`
	UIDValidity uint32    `json:"uidvalidity"`
	Messages    []Message `json:"messages"`
}

func (h *handler) listMessages(w http.ResponseWriter, r *http.Request) error {
	a, err := h.account(r)
	if err != nil {
		return err
	}
	mb, err := h.opts.Store.MailboxByName(r.Context(), a.ID, r.PathValue("name"))
	if err != nil {
		return err
	}
	mds, err := h.opts.Store.Metadata(r.Context(), mb.ID)
	if err != nil {
		return err
	}
	out := MessageList{Mailbox: mb.Name, UIDValidity: mb.UIDValidity, Messages: make([]Message, 0, len(mds))}
	for _, md := range mds {
		m := Message{UID: md.UID, Flags: md.Flags, Size: md.Size, InternalDate: md.InternalDate.UTC(),
			Subject: md.Envelope.Subject, From: mailmsg.FormatAddresses(md.Envelope.From),
			MessageID: md.Envelope.MessageID}
		if m.Flags == nil {
			m.Flags = []string{}
		}
		if mb.Name == "INBOX" && maildrop.InMaildrop(md.Message, h.opts.DeleteMode) {
			m.UIDL = h.uidl(md.UID, mb.UIDValidity)
		}
		out.Messages = append(out.Messages, m)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) rawMessage(w http.ResponseWriter, r *http.Request) error {
	uid, err := strconv.ParseUint(r.PathValue("uid"), 10, 32)
	if err != nil || uid == 0 {
		return errBadRequest("uid %q: want a positive number", r.PathValue("uid"))
	}
	a, err := h.account(r)
	if err != nil {
		return err
	}
	mb, err := h.opts.Store.MailboxByName(r.Context(), a.ID, r.PathValue("name"))
	if err != nil {
		return err
	}
	body, err := h.opts.Store.OpenMessage(r.Context(), mb.ID, uint32(uid))
	if err != nil {
		return err
	}
	defer body.Close()
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Length", strconv.FormatInt(body.Size(), 10))
	w.Header().Set("Cache-Control", "no-store")
	if _, err := io.Copy(w, body); err != nil {
		h.log.Warn("api: sending a message failed", "err", err)
	}
	return nil
}

// --- reset ---

// UserReset is the answer of POST /api/v1/users/{address}/reset: what it changed.
type UserReset struct {
	Messages int `json:"messages"`            // messages removed
	Deleted  int `json:"deleted_mailboxes"`   // folders deleted
	Created  int `json:"recreated_mailboxes"` // default folders created again
}

// AllReset is the answer of POST /api/v1/reset.
type AllReset struct {
	Users    int   `json:"users"`    // accounts deleted
	Messages int64 `json:"messages"` // messages they had
}

// resetUser empties every mailbox of an account and deletes the folders a new account
// would not have; default folders that were deleted are created again. UIDs go on from
// UIDNEXT (the UIDVALIDITY of a kept mailbox does not change, so its UIDs may not be
// reused, RFC 3501 §2.3.1.1).
func (h *handler) resetUser(w http.ResponseWriter, r *http.Request) error {
	a, err := h.account(r)
	if err != nil {
		return err
	}
	res, err := h.reset(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (h *handler) reset(ctx context.Context, a store.Account) (UserReset, error) {
	var res UserReset
	mbs, err := h.opts.Store.Mailboxes(ctx, a.ID)
	if err != nil {
		return res, err
	}
	keep := func(name string) bool {
		_, ok := h.opts.Folders[name]
		return name == "INBOX" || ok
	}
	// Children before their parents, so that no delete finds a child left behind.
	slices.SortFunc(mbs, func(x, y store.Mailbox) int { return strings.Compare(y.Name, x.Name) })
	present := map[string]bool{}
	for _, mb := range mbs {
		if !keep(mb.Name) {
			st, err := h.opts.Store.Status(ctx, mb.ID)
			if err == nil {
				res.Messages += int(st.Messages)
			}
			if err := h.opts.Store.DeleteMailbox(ctx, a.ID, mb.Name); err != nil && !errors.Is(err, store.ErrNoSuchMailbox) {
				return res, fmt.Errorf("reset %s: %w", a.Address, err)
			}
			res.Deleted++
			continue
		}
		present[mb.Name] = true
		msgs, err := h.opts.Store.Messages(ctx, mb.ID)
		if err != nil {
			return res, err
		}
		uids := make([]uint32, len(msgs))
		for i, m := range msgs {
			uids[i] = m.UID
		}
		if len(uids) > 0 {
			gone, err := h.opts.Store.Expunge(ctx, mb.ID, uids)
			if err != nil {
				return res, fmt.Errorf("reset %s: %w", a.Address, err)
			}
			res.Messages += len(gone)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(h.opts.Folders)) {
		if !present[name] {
			_, err := h.opts.Store.CreateMailbox(ctx, a.ID, name, h.opts.Folders[name])
			if err != nil && !errors.Is(err, store.ErrMailboxExists) {
				return res, fmt.Errorf("reset %s: %w", a.Address, err)
			}
			res.Created++
		}
	}
	return res, nil
}

// resetAll deletes every account.
func (h *handler) resetAll(w http.ResponseWriter, r *http.Request) error {
	accts, err := h.opts.Store.Accounts(r.Context())
	if err != nil {
		return err
	}
	var res AllReset
	for _, a := range accts {
		if err := h.opts.Store.DeleteAccount(r.Context(), a.Address); err != nil && !errors.Is(err, store.ErrNoSuchAccount) {
			return err
		}
		res.Users++
		res.Messages += a.Messages
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
