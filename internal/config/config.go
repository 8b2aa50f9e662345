// Package config holds every Letterbox setting in one struct and loads it from, in rising
// priority: the defaults in settings.go, a YAML file (--config FILE, else ./letterbox.yaml if
// present), the environment (LETTERBOX_<KEY>, dots become underscores: imap.addr ->
// LETTERBOX_IMAP_ADDR) and command-line flags.
//
// Implementation notes:
//
//   - Every setting is declared once, in the settings table (settings.go): its key, default,
//     flag and how it is read into the Config. Its environment variable is derived from the
//     key (EnvVar); the flags, Keys, the defaults and fill all come from the table, and
//     TestDocumentedSettings checks docs/configuration.md against it. Adding a setting is
//     its field in Config, its entry in the table, and its line in the docs.
//   - Each key is bound to its environment variable explicitly, so nested keys and keys the
//     file never mentions still come from the environment (viper's AutomaticEnv alone
//     misses those when unmarshalling).
//   - A flag only counts when it was given on the command line; its default is documentation.
//   - An environment variable set to the empty string counts ("LETTERBOX_IMAP_ADDR=" disables
//     the IMAP listener), as an empty flag value does.
//   - A key in the YAML file that is no setting stops Load with an error naming it and the
//     closest setting: a mistyped key would otherwise silently leave its default in force.
//     A LETTERBOX_* variable that is no setting (nor one of the test suites' own, see
//     notSettings) is only warned about in Config.Warnings: the environment is shared with
//     other programs and may be set for another version.
//   - Load validates everything it can (sizes, durations, enums, networks) and reports every
//     problem at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/letterbox-mail/letterbox/internal/maildrop"
	"github.com/spf13/cast"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix is the prefix of every environment variable Letterbox reads.
const EnvPrefix = "LETTERBOX"

// DefaultFile is the configuration file read when --config is not given, if it exists.
const DefaultFile = "letterbox.yaml"

// Config is every Letterbox setting, resolved and validated.
type Config struct {
	// Data is the directory of the store and the generated certificate.
	Data string
	// Store says where the mail is: SQLite under Data, or PostgreSQL.
	Store Store
	// Hostname names this server in greetings and in the self-signed certificate.
	Hostname string

	IMAP  IMAP
	IMAPS Listener
	POP3  POP3
	POP3S Listener
	LMTP  LMTP
	HTTP  HTTP

	API     API
	Trace   Trace
	TLS     TLS
	Auth    Auth
	Proxy   Proxy
	Limits  Limits
	Folders Folders
	Quota   Quota
	Log     Log
	GC      GC
	// Public is how clients reach this server from outside, for client autoconfiguration.
	Public Public

	// Inspector is the web inspector on the HTTP listener.
	Inspector Inspector

	// File is the configuration file that was read, "" if none.
	File string
	// Warnings are problems that do not stop Letterbox (LETTERBOX_* variables that are no
	// setting).
	Warnings []string
}

// Listener is one listening address; "" disables the listener. LMTP also takes unix:/path.
type Listener struct {
	Addr string
}

// HTTP configures the HTTP listener (health, metrics, autoconfiguration).
type HTTP struct {
	Addr string
	// Pprof mounts Go's runtime profiler (net/http/pprof) under /debug/pprof/. Off unless
	// asked for (http.pprof, serve --pprof): profiles show what the server is doing to
	// anyone who can reach the listener.
	Pprof bool
}

// LMTP configures the LMTP listener and how a delivery address is resolved (also by
// `letterbox deliver`).
type LMTP struct {
	Addr string
	// DetailDelimiter: each of its characters separates an address's local part from its
	// detail (user+detail@domain, as Postfix's recipient_delimiter); "" means no detail.
	DetailDelimiter string
	// DetailToFolder delivers user+detail@domain into the folder detail when it exists.
	DetailToFolder bool
}

// Quota configures quota enforcement.
type Quota struct {
	// Grace is the raw quota.grace setting ("10%", "10M", "0"); GracePercent or GraceBytes
	// is it parsed (both 0: no grace).
	Grace        string
	GracePercent float64
	GraceBytes   int64
}

// GraceFor is how far past a quota of quota bytes the delivery crossing it may go (as
// Dovecot's quota_grace): GracePercent of the quota, or GraceBytes.
func (q Quota) GraceFor(quota int64) int64 {
	if q.GracePercent > 0 {
		return int64(float64(quota) * q.GracePercent / 100)
	}
	return q.GraceBytes
}

// MessageGraceFor is the same for a quota of quota messages: GracePercent of it; a grace
// given as a size allows no messages past the quota.
func (q Quota) MessageGraceFor(quota int64) int64 {
	return int64(float64(quota) * q.GracePercent / 100)
}

// DefaultMessageLimit is imap.message_limit's default: far above the mailboxes of nearly
// every user, so that clients that do not know RFC 9738 (which then see only the newest
// messages of a larger mailbox, RFC 9738 §4.1) are not hurt, while one command's work
// stays bounded; RFC 9738 §3 asks for no less than 1000.
const DefaultMessageLimit = 100000

// IMAP configures the IMAP listener (STARTTLS when TLS is configured).
type IMAP struct {
	Addr string
	// IdleTimeout closes a session idle (outside IDLE's own refresh) for this long.
	IdleTimeout time.Duration
	// QResyncRetention is how long the store keeps an expunge's tombstone, from which
	// QRESYNC (RFC 7162) tells a client exactly which messages vanished since it last
	// looked, as Dovecot's expunge log; a client last seen before that gets a full
	// resync. 0 keeps them forever.
	QResyncRetention time.Duration
	// MessageLimit is the most messages one FETCH, SEARCH, STORE, COPY, MOVE, UID EXPUNGE
	// or MULTIAPPEND handles, announced as MESSAGELIMIT (RFC 9738); 0 turns it off.
	MessageLimit int
}

// StoreExpungeRetention is QResyncRetention as store.Options.ExpungeRetention wants it
// (0 there is the default, negative forever).
func (i IMAP) StoreExpungeRetention() time.Duration {
	if i.QResyncRetention == 0 {
		return -1
	}
	return i.QResyncRetention
}

// POP3 configures the POP3 listener and POP3's view of INBOX.
type POP3 struct {
	Addr string
	// UIDLFormat expands like Dovecot's pop3_uidl_format: %v UIDVALIDITY, %u UID.
	UIDLFormat string
	// MarkSeen makes RETR set \Seen.
	MarkSeen bool
	// Delete is what a committed DELE does: DeleteExpunge, DeleteKeepFlagged or DeleteHide.
	Delete string
	// Expire is the raw pop3.expire setting ("NEVER", "30d", "720h"); ExpireAfter is it parsed
	// (0: never).
	Expire      string
	ExpireAfter time.Duration
	// LoginDelay is the minimum time between two logins of one user (0: none).
	LoginDelay  time.Duration
	IdleTimeout time.Duration
}

// Values of pop3.delete (internal/maildrop's delete modes).
const (
	DeleteExpunge     = maildrop.DeleteExpunge
	DeleteKeepFlagged = maildrop.DeleteKeepFlagged
	DeleteHide        = maildrop.DeleteHide
)

// API configures the JSON test API on the HTTP listener (internal/api).
type API struct {
	// Enabled mounts the API under /api/v1/; `serve --testing` turns it on.
	Enabled bool
	// Token is the bearer token every request must carry. "" refuses every request, except
	// from loopback when OpenOnLoopback is set.
	Token string
	// OpenOnLoopback lets loopback clients in without a token when Token is "". It is no
	// setting: `serve --testing` sets it.
	OpenOnLoopback bool
}

// Inspector configures the web inspector at / on the HTTP listener (internal/inspector). It
// shows mail content, so it answers only loopback clients unless api.token is set, and
// then only requests that carry that token.
type Inspector struct {
	// Enabled mounts the inspector; `serve --testing` and `serve --demo` turn it on.
	Enabled bool
}

// Trace configures wire traces (internal/trace): one transcript file per session.
type Trace struct {
	// Dir is where the transcripts go; "" writes none. Created if missing.
	Dir string
	// BodyLimit is how many bytes of each message body or literal a transcript shows.
	BodyLimit int64
}

// TLS says where the certificate comes from.
type TLS struct {
	Cert, Key  string // PEM files
	SelfSigned bool   // generate (once) and reuse a certificate under Data
}

// Enabled reports whether any TLS certificate is configured.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Key != "" || t.SelfSigned }

// Auth configures logins.
type Auth struct {
	// AllowPlaintext: nil allows plaintext credentials on loopback (and TrustedNetworks) only;
	// true everywhere; false nowhere without TLS.
	AllowPlaintext  *bool
	TrustedNetworks []netip.Prefix
	FailureDelay    time.Duration
	// MaxFailures failed logins from one address within FailureWindow block it for
	// BlockDuration (0: never block).
	MaxFailures   int
	FailureWindow time.Duration
	BlockDuration time.Duration
}

// Proxy configures the HAProxy PROXY protocol on the IMAP, IMAPS, POP3, POP3S and LMTP
// listeners (internal/proxyproto).
type Proxy struct {
	// TrustedNetworks are the proxies whose connections may start with a PROXY protocol
	// header naming the client's address; a header from anybody else closes the
	// connection. Empty: no proxies.
	TrustedNetworks []netip.Prefix
	// Required refuses a connection from TrustedNetworks that does not start with a header.
	Required bool
}

// Limits bounds what clients may send.
type Limits struct {
	MessageSize int64 // bytes
	// MaxConnections caps the IMAP, POP3 and LMTP connections open at once, in total and
	// from one address (0: no limit).
	MaxConnections      int
	MaxConnectionsPerIP int
	// MaxUserIPConnections caps the sessions of one account from one address, per protocol
	// (Dovecot's mail_max_userip_connections; 0: no limit).
	MaxUserIPConnections int
	// Recipients caps the RCPT commands of one LMTP transaction (0: no limit).
	Recipients int
	// HeaderSize refuses new mail (LMTP, deliver, APPEND) with a header section, the
	// message's or a MIME part's, of more bytes; MIMEDepth new mail nested deeper than this
	// many levels of multipart and message/rfc822 (both 0: no limit). Import never refuses.
	HeaderSize int64
	MIMEDepth  int
}

// StoreHeaderSize is HeaderSize as store.Options.MaxHeaderSize wants it (0 there is the
// default, negative no limit).
func (l Limits) StoreHeaderSize() int64 {
	if l.HeaderSize == 0 {
		return -1
	}
	return l.HeaderSize
}

// StoreMIMEDepth is MIMEDepth as store.Options.MaxMIMEDepth wants it.
func (l Limits) StoreMIMEDepth() int {
	if l.MIMEDepth == 0 {
		return -1
	}
	return l.MIMEDepth
}

// Folders names the special-use folders every new account gets; "" leaves one out.
type Folders struct {
	Sent, Drafts, Trash, Junk, Archive string
}

// Store returns the folders as store.Options.Folders wants them: name -> special-use
// attribute (RFC 6154, the values of the store.Special* constants; spelled out here so that
// this package does not depend on the store).
func (f Folders) Store() map[string]string {
	m := map[string]string{}
	for _, e := range []struct{ name, use string }{
		{f.Sent, `\Sent`}, {f.Drafts, `\Drafts`}, {f.Trash, `\Trash`},
		{f.Junk, `\Junk`}, {f.Archive, `\Archive`},
	} {
		if e.name != "" {
			m[e.name] = e.use
		}
	}
	return m
}

// Public says how mail clients reach the server (public.*): what client autoconfiguration
// (Mozilla autoconfig, Autodiscover, Apple profiles) hands out. Each endpoint is resolved
// by Load: a key left unset is derived from hostname and the listeners.
type Public struct {
	IMAP, POP3, SMTP Endpoint
}

// Endpoint is one server a client connects to. Host "" means not offered.
type Endpoint struct {
	Host string
	Port int
	// TLS is TLSImplicit, TLSStartTLS or TLSNone.
	TLS string
}

// Values of public.*.tls.
const (
	TLSImplicit = "ssl"
	TLSStartTLS = "starttls"
	TLSNone     = "none"
)

// GC tunes Go's garbage collector in `letterbox serve`.
type GC struct {
	// HeapFloor is heap the collector counts as live without it being used (bytes; 0:
	// none): an allocation of that size that is never touched, so it costs address space,
	// not memory. With it, a server whose live heap is a few megabytes does not collect
	// every few megabytes allocated (a FETCH of 10,000 bodies allocates 65 MB); garbage may
	// then grow up to about HeapFloor more before a collection.
	HeapFloor int64
}

// Log configures the process log.
type Log struct {
	Level  slog.Level
	Format string // "text" or "json"
}

// NewLogger returns a logger writing to w at the configured level and format.
func (l Log) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.Level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// AddGlobalFlags defines the flags every subcommand takes: --config and the global flags of
// the settings table (--data, --store, --log-level).
func AddGlobalFlags(fs *pflag.FlagSet) {
	fs.String(FlagConfig, "", "YAML configuration file (default ./"+DefaultFile+" if present)")
	addFlags(fs, true)
}

// AddServeFlags defines the flags of `serve`: those of the settings table that are not global.
func AddServeFlags(fs *pflag.FlagSet) {
	addFlags(fs, false)
}

// addFlags defines the flags of the settings whose global is global, with the settings'
// defaults (only documentation: a flag counts only when given, see Load).
func addFlags(fs *pflag.FlagSet, global bool) {
	for _, s := range settings {
		if s.flag == "" || s.global != global {
			continue
		}
		switch def := s.def.(type) {
		case bool:
			fs.Bool(s.flag, def, s.usage)
		case string:
			fs.String(s.flag, def, s.usage)
		default:
			panic(fmt.Sprintf("config: setting %s: a flag of type %T", s.key, def))
		}
	}
}

// LoadOptions says where Load looks besides the defaults and the environment.
type LoadOptions struct {
	// File is the YAML file to read (an error if it cannot be read). "" means the --config
	// flag in Flags, else LETTERBOX_CONFIG, else ./letterbox.yaml if it exists.
	File string
	// Flags are the parsed command-line flags; those named in this package and changed on
	// the command line override everything else. nil means none.
	Flags *pflag.FlagSet
}

// Load resolves the configuration.
func Load(opts LoadOptions) (*Config, error) {
	v := viper.New()
	for _, s := range settings {
		v.SetDefault(s.key, s.def)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AllowEmptyEnv(true)
	v.AutomaticEnv()
	for _, s := range settings {
		if err := v.BindEnv(s.key, EnvVar(s.key)); err != nil {
			return nil, fmt.Errorf("config: bind %s: %w", s.key, err)
		}
	}

	file, explicit := opts.File, opts.File != ""
	if !explicit && opts.Flags != nil {
		if f := opts.Flags.Lookup(FlagConfig); f != nil && f.Changed {
			file, explicit = f.Value.String(), true
		}
	}
	if !explicit {
		if env, ok := os.LookupEnv(configEnv); ok && env != "" {
			file, explicit = env, true
		}
	}
	if !explicit {
		if _, err := os.Stat(DefaultFile); err == nil {
			file = DefaultFile
		}
	}

	cfg := &Config{Warnings: unknownEnv(os.Environ())}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		// The file's own keys, read apart from the defaults, say what it mistyped.
		fv := viper.New()
		fv.SetConfigType("yaml")
		if err := fv.ReadConfig(bytes.NewReader(raw)); err != nil {
			return nil, fmt.Errorf("config: %s: %w", file, err)
		}
		fileKeys := fv.AllKeys()
		sort.Strings(fileKeys)
		if err := unknownKeys(file, fileKeys); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(raw)); err != nil {
			return nil, fmt.Errorf("config: %s: %w", file, err)
		}
		cfg.File = file
	}

	if opts.Flags != nil {
		for _, s := range settings {
			if s.flag == "" {
				continue
			}
			if f := opts.Flags.Lookup(s.flag); f != nil {
				if err := v.BindPFlag(s.key, f); err != nil {
					return nil, fmt.Errorf("config: bind --%s: %w", s.flag, err)
				}
			}
		}
	}

	if err := cfg.fill(v); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Defaults is the configuration from the built-in defaults alone: no file, no environment,
// no flags (the in-process test server, pkg/letterboxtest, starts from it).
func Defaults() (*Config, error) {
	v := viper.New()
	for _, s := range settings {
		v.SetDefault(s.key, s.def)
	}
	cfg := &Config{}
	if err := cfg.fill(v); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validate checks what involves several settings, once fill has read them all.
func (cfg *Config) validate() []error {
	var errs []error
	if (cfg.TLS.Cert == "") != (cfg.TLS.Key == "") {
		errs = append(errs, errors.New("tls.cert and tls.key: give both or neither"))
	}
	if !cfg.TLS.Enabled() {
		if cfg.IMAPS.Addr != "" {
			errs = append(errs, errors.New("imaps.addr: implicit TLS needs tls.cert and tls.key, or tls.self_signed"))
		}
		if cfg.POP3S.Addr != "" {
			errs = append(errs, errors.New("pop3s.addr: implicit TLS needs tls.cert and tls.key, or tls.self_signed"))
		}
	}
	if cfg.Proxy.Required && len(cfg.Proxy.TrustedNetworks) == 0 {
		errs = append(errs, errors.New("proxy.required: needs proxy.trusted_networks (the proxies that send the header)"))
	}
	if cfg.Auth.MaxFailures > 0 && (cfg.Auth.FailureWindow <= 0 || cfg.Auth.BlockDuration <= 0) {
		errs = append(errs, errors.New("auth.failure_window and auth.block_duration: must be more than 0 when auth.max_failures is set"))
	}
	seen := map[string]bool{}
	for _, name := range []string{cfg.Folders.Sent, cfg.Folders.Drafts, cfg.Folders.Trash, cfg.Folders.Junk, cfg.Folders.Archive} {
		if name == "" {
			continue
		}
		if strings.EqualFold(name, "INBOX") || seen[strings.ToLower(name)] {
			errs = append(errs, fmt.Errorf("folders: %q is used twice or names INBOX", name))
		}
		seen[strings.ToLower(name)] = true
	}
	return append(errs, cfg.resolvePublic()...)
}

// resolvePublic fills what public.* leaves unset. IMAP and POP3 default to hostname and the
// implicit-TLS listener when one is configured (its port, or 993/995), else the plain
// listener (its port, or 143/110) with STARTTLS if TLS is configured, else no TLS. A
// protocol whose listeners are both disabled is not offered unless public.*.host names a
// server. SMTP is offered only when public.smtp.host is set (default port 587 with
// STARTTLS; 465 means implicit TLS).
func (cfg *Config) resolvePublic() []error {
	var errs []error
	resolve := func(name string, e *Endpoint, implicitAddr, plainAddr string, implicitPort, plainPort int) {
		switch e.TLS {
		case "", TLSImplicit, TLSStartTLS, TLSNone:
		case "tls":
			e.TLS = TLSImplicit
		default:
			errs = append(errs, fmt.Errorf("public.%s.tls: want ssl, starttls or none, got %q", name, e.TLS))
		}
		derived := Endpoint{}
		switch {
		case implicitAddr != "":
			derived = Endpoint{Port: listenerPort(implicitAddr, implicitPort), TLS: TLSImplicit}
		case plainAddr != "" && !strings.HasPrefix(plainAddr, "unix:"):
			derived = Endpoint{Port: listenerPort(plainAddr, plainPort), TLS: TLSNone}
			if cfg.TLS.Enabled() {
				derived.TLS = TLSStartTLS
			}
		case e.Host == "":
			*e = Endpoint{} // not offered
			return
		default:
			derived = Endpoint{Port: implicitPort, TLS: TLSImplicit}
		}
		if e.Host == "" {
			e.Host = cfg.Hostname
		}
		if e.TLS == "" {
			e.TLS = derived.TLS
			if e.Port != 0 && e.Port != derived.Port && e.Port == implicitPort {
				e.TLS = TLSImplicit // a port given alone: 993 and 995 are implicit TLS
			}
		}
		if e.Port == 0 {
			e.Port = derived.Port
			if e.TLS != derived.TLS {
				e.Port = plainPort
				if e.TLS == TLSImplicit {
					e.Port = implicitPort
				}
			}
		}
	}
	resolve("imap", &cfg.Public.IMAP, cfg.IMAPS.Addr, cfg.IMAP.Addr, 993, 143)
	resolve("pop3", &cfg.Public.POP3, cfg.POP3S.Addr, cfg.POP3.Addr, 995, 110)
	// SMTP: no listener of ours (Letterbox has no submission server), so only what is set.
	smtp := &cfg.Public.SMTP
	if smtp.Host == "" {
		*smtp = Endpoint{}
		return errs
	}
	switch smtp.TLS {
	case TLSImplicit, TLSStartTLS, TLSNone:
	case "tls":
		smtp.TLS = TLSImplicit
	case "":
		smtp.TLS = TLSStartTLS // submission, RFC 6409, with STARTTLS
		if smtp.Port == 465 {
			smtp.TLS = TLSImplicit // submissions, RFC 8314 §3.3
		}
	default:
		errs = append(errs, fmt.Errorf("public.smtp.tls: want ssl, starttls or none, got %q", smtp.TLS))
	}
	if smtp.Port == 0 {
		smtp.Port = 587
		if smtp.TLS == TLSImplicit {
			smtp.Port = 465
		}
	}
	return errs
}

// listenerPort is the port of a listening address, or def when it has none or binds a
// free port (0).
func listenerPort(addr string, def int) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return def
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 {
		return def
	}
	return n
}

// parseExpire reads pop3.expire: NEVER (or 0, or empty), a number of days ("30d"), or a Go
// duration ("720h").
func parseExpire(s string) (time.Duration, error) {
	switch strings.ToLower(s) {
	case "", "never", "0":
		return 0, nil
	}
	if days, ok := strings.CutSuffix(strings.ToLower(s), "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("pop3.expire: want NEVER, a number of days (30d) or a duration (720h), got %q", s)
	}
	return d, nil
}

// parseDays reads a retention (key names it): a number of days (30d), a duration (720h),
// or NEVER or 0 for none (0).
func parseDays(key, s string) (time.Duration, error) {
	switch strings.ToLower(s) {
	case "never", "0":
		return 0, nil
	}
	if days, ok := strings.CutSuffix(strings.ToLower(s), "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: want a number of days (30d), a duration (720h) or NEVER, got %q", key, s)
	}
	return d, nil
}

// parseNetworks reads a list of networks (auth.trusted_networks, proxy.trusted_networks,
// named by key): a YAML list, or a string of prefixes separated by commas or spaces (from
// the environment). A bare address means that one host.
func parseNetworks(key string, raw any) ([]netip.Prefix, error) {
	var items []string
	switch x := raw.(type) {
	case nil:
	case string:
		items = strings.FieldsFunc(x, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	default:
		list, err := cast.ToStringSliceE(x)
		if err != nil {
			return nil, fmt.Errorf("%s: want a list of networks: %w", key, err)
		}
		items = list
	}
	var out []netip.Prefix
	var errs []error
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(item); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %q is not a network (192.0.2.0/24) or address", key, item))
	}
	return out, errors.Join(errs...)
}
