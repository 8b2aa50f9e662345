// Package inspector is Letterbox's web inspector: server-rendered HTML pages at / on the
// HTTP listener (inspector.enabled; `serve --testing` and `serve --demo` turn it on) that
// show what the store holds as both protocols see it: accounts with their usage, an
// account's folders, a folder's messages with IMAP flags, UID and the UIDL a POP3 session
// would show, a message's header and MIME tree, live sessions by protocol and the latest
// wire transcripts. An open page follows changes without a reload.
//
// Implementation notes:
//
//   - It is a read-only view of the store, like internal/api: everything comes through the Store
//     interface below, and POP3 only through internal/maildrop's rules (FormatUIDL and
//     InMaildrop, which internal/protocol/pop3 and internal/api use too), so the UIDLs and POP3 message
//     numbers shown are the ones a POP3 session logging in now would show.
//   - Sessions and transcripts come from optional providers (SessionLister, TraceStore);
//     without one, its page says it is not enabled.
//   - Access (authorize): mail content must never be public by default. With a token
//     (api.token) configured, every request must carry it, as the HTTP Basic password (the
//     browser asks for it) or as a bearer token. Without one, only loopback clients are
//     served, and only when the request names the server by an IP address or "localhost"
//     (so a DNS-rebinding page cannot read it through a visitor's browser) and carries no
//     proxy header (a reverse proxy on the same host would otherwise make everyone local).
//     Every answer forbids caching and framing and allows only the inspector's own script
//     and style sheet (Content-Security-Policy), so a hostile header value can neither run
//     nor load anything even if it escaped html/template's escaping.
//   - Live updates: each page names an event stream (GET /events, text/event-stream) fed by
//     the store's wake-ups (Store.Watch for one account, Store.WatchAll for the overview);
//     a few lines of JavaScript (assets/inspector.js) refetch the page and swap its #live
//     element. Without JavaScript a <noscript> meta refresh reloads the page instead.
//     Event streams end when Shutdown is called (internal/server calls it as the HTTP server
//     shuts down), so a graceful stop never waits for an open browser tab.
package inspector

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/letterbox-mail/letterbox/internal/localhttp"
	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/letterbox-mail/letterbox/internal/store"
)

// Store is what the inspector reads; *store.Store implements it.
type Store interface {
	Accounts(ctx context.Context) ([]store.Account, error)
	LookupAccount(ctx context.Context, address string) (store.Account, error)
	Mailboxes(ctx context.Context, accountID int64) ([]store.Mailbox, error)
	MailboxByName(ctx context.Context, accountID int64, name string) (store.Mailbox, error)
	Status(ctx context.Context, mailboxID int64) (store.MailboxStatus, error)
	Messages(ctx context.Context, mailboxID int64, ranges ...store.UIDRange) ([]store.Message, error)
	Metadata(ctx context.Context, mailboxID int64, ranges ...store.UIDRange) ([]store.Metadata, error)
	OpenMessage(ctx context.Context, mailboxID int64, uid uint32) (store.Body, error)
	Watch(accountID int64) (<-chan struct{}, func())
	WatchAll() (<-chan struct{}, func())
}

// Session is one open protocol session, as the sessions page shows it.
type Session struct {
	Protocol string // "imap", "pop3", "lmtp"
	ID       string // as the logs and transcripts name the session
	User     string // "" before login
	Remote   string // the client's address
	Started  time.Time
	Mailbox  string // the selected folder (IMAP) or "INBOX" (POP3); "" if none
	State    string // e.g. "authenticated", "idle", "transaction"
}

// SessionLister lists the sessions open now.
type SessionLister interface {
	Sessions() []Session
}

// Trace is one stored wire transcript.
type Trace struct {
	Name     string // what OpenTrace takes
	Protocol string
	User     string
	Started  time.Time
	Size     int64
}

// TraceStore lists and opens wire transcripts.
type TraceStore interface {
	Traces() ([]Trace, error)
	OpenTrace(name string) (io.ReadCloser, error)
}

// Options configures the inspector.
type Options struct {
	Store Store
	// Token (api.token), when set, must be sent with every request: as the password of
	// HTTP Basic authentication (any user name) or as "Authorization: Bearer <token>".
	// When "", only loopback clients are served.
	Token string
	// UIDLFormat and DeleteMode are pop3.uidl_format and pop3.delete, so that the UIDLs and
	// maildrop shown are POP3's.
	UIDLFormat string
	DeleteMode string
	// Sessions and Traces feed the sessions and transcripts pages; nil: not enabled.
	Sessions SessionLister
	Traces   TraceStore
	Logger   *slog.Logger
}

// Inspector serves the pages. Register mounts it; Shutdown ends its event streams.
type Inspector struct {
	opts  Options
	log   *slog.Logger
	pages map[string]*template.Template

	quitOnce sync.Once
	quit     chan struct{}
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// pageNames are the templates/*.html files besides layout.html, one per page.
var pageNames = []string{"accounts", "account", "folder", "message", "sessions", "traces", "trace", "error"}

// New checks opts and parses the templates.
func New(opts Options) (*Inspector, error) {
	if opts.Store == nil {
		return nil, errors.New("inspector: Options.Store is required")
	}
	if _, err := maildrop.FormatUIDL(opts.UIDLFormat, 1, 1); err != nil {
		return nil, fmt.Errorf("inspector: %w", err)
	}
	in := &Inspector{opts: opts, log: opts.Logger, pages: map[string]*template.Template{},
		quit: make(chan struct{})}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(templateFuncs).ParseFS(templateFS,
			"templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("inspector: template %s: %w", name, err)
		}
		in.pages[name] = t
	}
	return in, nil
}

// Register mounts the inspector's routes on mux.
func (in *Inspector) Register(mux *http.ServeMux) {
	routes := map[string]func(http.ResponseWriter, *http.Request) error{
		"GET /{$}":                in.accounts,
		"GET /accounts/{address}": in.account,
		"GET /accounts/{address}/folders/{folder}":           in.folder,
		"GET /accounts/{address}/folders/{folder}/{uid}":     in.message,
		"GET /accounts/{address}/folders/{folder}/{uid}/raw": in.rawMessage,
		"GET /sessions":      in.sessions,
		"GET /traces":        in.traces,
		"GET /traces/{name}": in.trace,
		"GET /events":        in.events,
	}
	for pattern, fn := range routes {
		mux.Handle(pattern, in.wrap(fn))
	}
	assets := http.FileServerFS(assetFS)
	mux.Handle("GET /assets/", in.wrap(func(w http.ResponseWriter, r *http.Request) error {
		assets.ServeHTTP(w, r)
		return nil
	}))
}

// Shutdown ends every open event stream and refuses new ones; pages are still served
// until the HTTP server stops. It is safe to call more than once.
func (in *Inspector) Shutdown() {
	in.quitOnce.Do(func() { close(in.quit) })
}

// errNotFound is answered with the 404 page.
type errNotFound string

func (e errNotFound) Error() string { return string(e) }

// wrap checks access, sets the headers every answer carries, and renders a handler's error
// as an error page: 404 for what does not exist (the store's sentinels included), 500
// otherwise.
func (in *Inspector) wrap(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "+
			"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		if status, msg := in.authorize(r); status != http.StatusOK {
			if status == http.StatusUnauthorized {
				h.Set("WWW-Authenticate", `Basic realm="Letterbox inspector", charset="UTF-8"`)
			}
			http.Error(w, msg, status)
			return
		}
		err := fn(w, r)
		if err == nil {
			return
		}
		var nf errNotFound
		switch {
		case errors.As(err, &nf), errors.Is(err, store.ErrNoSuchAccount),
			errors.Is(err, store.ErrNoSuchMailbox), errors.Is(err, store.ErrNoSuchMessage):
			in.render(w, http.StatusNotFound, "error", page{Title: "Not found"}, strings.TrimPrefix(err.Error(), "store: "))
		case r.Context().Err() != nil:
			// The client went away.
		default:
			in.log.Error("inspector request failed", "path", r.URL.Path, "err", err)
			in.render(w, http.StatusInternalServerError, "error", page{Title: "Error"}, "internal error (see the server log)")
		}
	})
}

// authorize decides whether a request may see the inspector; see the package comment.
func (in *Inspector) authorize(r *http.Request) (status int, msg string) {
	if in.opts.Token != "" {
		token := ""
		if _, pw, ok := r.BasicAuth(); ok {
			token = pw
		} else if scheme, t, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
			token = strings.TrimSpace(t)
		}
		if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(in.opts.Token)) != 1 {
			return http.StatusUnauthorized, "the inspector needs the api.token (as the password, any user name)"
		}
		return http.StatusOK, ""
	}
	if err := localhttp.Check(r); err != nil {
		return http.StatusForbidden, "the inspector: " + err.Error()
	}
	return http.StatusOK, ""
}

// page is what the layout needs of every page.
type page struct {
	Title  string
	Nav    string  // the top-level section: "accounts", "sessions" or "traces"
	Crumbs []crumb // the path from the accounts overview, the current page last
	// Events is the event stream this page follows ("" for none); without JavaScript the
	// page reloads every Refresh seconds instead.
	Events  string
	Refresh int
	Data    any
}

type crumb struct {
	Name, URL string
}

// render writes a page, or a 500 if its template fails (rendered before anything is sent).
func (in *Inspector) render(w http.ResponseWriter, status int, name string, p page, data any) {
	p.Data = data
	var buf bytes.Buffer
	if err := in.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		in.log.Error("inspector: rendering a page", "page", name, "err", err)
		http.Error(w, "internal error (see the server log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes()) // the client may be gone; nothing to do about it
}
