// Package config holds every Letterbox setting in one struct and loads it from, in rising
// priority: the defaults in this file, a YAML file (--config FILE, else ./letterbox.yaml if
// present), the environment (LETTERBOX_<KEY>, dots become underscores: imap.addr ->
// LETTERBOX_IMAP_ADDR) and command-line flags.
//
// Implementation notes:
//
//   - Every key is listed once, in the keys table below, with its default. Each is bound to its
//     environment variable explicitly, so nested keys and keys the file never mentions still
//     come from the environment (viper's AutomaticEnv alone misses those when unmarshalling).
//   - A flag only counts when it was given on the command line; its default is documentation.
//   - An environment variable set to the empty string counts ("LETTERBOX_IMAP_ADDR=" disables
//     the IMAP listener), as an empty flag value does.
//   - Unknown keys in the YAML file are reported in Config.Warnings, never an error, so that
//     a file written for a newer version still starts an older one.
//   - Load validates everything it can (sizes, durations, enums, networks) and reports every
//     problem at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/letterbox-mail/letterbox/internal/datasize"
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
	// Public is how clients reach this server from outside, for client autoconfiguration.
	Public Public

	// Inspector is the web inspector on the HTTP listener.
	Inspector Inspector

	// File is the configuration file that was read, "" if none.
	File string
	// Warnings are problems that do not stop Letterbox (unknown keys in the file).
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

// API configures the JSON test API on the HTTP listener (pkg/api).
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

// Inspector configures the web inspector at / on the HTTP listener (pkg/inspector). It
// shows mail content, so it answers only loopback clients unless api.token is set, and
// then only requests that carry that token.
type Inspector struct {
	// Enabled mounts the inspector; `serve --testing` and `serve --demo` turn it on.
	Enabled bool
}

// Trace configures wire traces (pkg/trace): one transcript file per session.
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
// listeners (pkg/proxyproto).
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

// key is one setting: its dotted name and its default.
type key struct {
	name string
	def  any
}

// keys is every setting Letterbox knows, with its default (CONTRACT.md).
var keys = []key{
	{"data", "./letterbox-data"},
	{"store.url", ""},
	{"hostname", ""}, // "" means os.Hostname(), else "localhost"
	{"imap.addr", "127.0.0.1:1143"},
	{"imap.idle_timeout", "30m"},
	{"imap.qresync_retention", "30d"},
	{"imap.message_limit", DefaultMessageLimit},
	{"imaps.addr", ""},
	{"pop3.addr", "127.0.0.1:1110"},
	{"pop3.uidl_format", "%08Xu%08Xv"},
	{"pop3.mark_seen", true},
	{"pop3.delete", DeleteExpunge},
	{"pop3.expire", "NEVER"},
	{"pop3.login_delay", "0s"},
	{"pop3.idle_timeout", "10m"},
	{"pop3s.addr", ""},
	{"lmtp.addr", "127.0.0.1:2424"},
	{"lmtp.detail_delimiter", "+"},
	{"lmtp.detail_to_folder", true},
	{"http.addr", "127.0.0.1:8080"},
	{"http.pprof", false},
	{"api.enabled", false},
	{"api.token", ""},
	{"inspector.enabled", false},
	{"trace.dir", ""},
	{"trace.body_limit", "4K"},
	{"tls.cert", ""},
	{"tls.key", ""},
	{"tls.self_signed", false},
	{"auth.allow_plaintext", ""}, // "": loopback and trusted networks only
	{"auth.trusted_networks", []string{}},
	{"auth.failure_delay", "2s"},
	{"auth.max_failures", 10},
	{"auth.failure_window", "10m"},
	{"auth.block_duration", "15m"},
	{"proxy.trusted_networks", []string{}},
	{"proxy.required", false},
	{"limits.message_size", "50M"},
	{"limits.max_connections", 1000},
	{"limits.max_connections_per_ip", 50},
	{"limits.max_userip_connections", 10},
	{"limits.recipients", 1000},  // Postfix's smtpd_recipient_limit
	{"limits.header_size", "1M"}, // the header the store keeps for parsing (internal/mailmsg/parse.go)
	{"limits.mime_depth", 64},    // the nesting the store describes whole
	{"folders.sent", "Sent"},
	{"folders.drafts", "Drafts"},
	{"folders.trash", "Trash"},
	{"folders.junk", "Junk"},
	{"folders.archive", "Archives"}, // Thunderbird's name for its archive folder
	{"quota.grace", "10%"},
	{"log.level", "info"},
	{"log.format", "text"},
	// public.*: "" and 0 mean derived from hostname and the listeners (resolvePublic).
	{"public.imap.host", ""},
	{"public.imap.port", 0},
	{"public.imap.tls", ""},
	{"public.pop3.host", ""},
	{"public.pop3.port", 0},
	{"public.pop3.tls", ""},
	{"public.smtp.host", ""}, // Letterbox has no submission server: unset offers none
	{"public.smtp.port", 0},
	{"public.smtp.tls", ""},
}

// Keys lists every setting's dotted name, in table order.
func Keys() []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.name
	}
	return out
}

// EnvVar is the environment variable of a key: imap.addr -> LETTERBOX_IMAP_ADDR.
func EnvVar(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Flag names bound to keys. Flags are defined by AddGlobalFlags and AddServeFlags.
const (
	FlagConfig        = "config"
	FlagData          = "data"
	FlagStore         = "store"
	FlagIMAPAddr      = "imap-addr"
	FlagIMAPSAddr     = "imaps-addr"
	FlagPOP3Addr      = "pop3-addr"
	FlagPOP3SAddr     = "pop3s-addr"
	FlagLMTPAddr      = "lmtp-addr"
	FlagHTTPAddr      = "http-addr"
	FlagPprof         = "pprof"
	FlagTrace         = "trace"
	FlagTLSSelfSigned = "tls-self-signed"
	FlagLogLevel      = "log-level"
)

// flagKeys maps a flag to the key it sets.
var flagKeys = map[string]string{
	FlagData:          "data",
	FlagStore:         "store.url",
	FlagIMAPAddr:      "imap.addr",
	FlagIMAPSAddr:     "imaps.addr",
	FlagPOP3Addr:      "pop3.addr",
	FlagPOP3SAddr:     "pop3s.addr",
	FlagLMTPAddr:      "lmtp.addr",
	FlagHTTPAddr:      "http.addr",
	FlagPprof:         "http.pprof",
	FlagTrace:         "trace.dir",
	FlagTLSSelfSigned: "tls.self_signed",
	FlagLogLevel:      "log.level",
}

func defaultOf(name string) any {
	for _, k := range keys {
		if k.name == name {
			return k.def
		}
	}
	panic("config: unknown key " + name)
}

// AddGlobalFlags defines the flags every subcommand takes: --config, --data, --log-level.
func AddGlobalFlags(fs *pflag.FlagSet) {
	fs.String(FlagConfig, "", "YAML configuration file (default ./"+DefaultFile+" if present)")
	fs.String(FlagData, defaultOf("data").(string), "data directory (store and generated certificate); created if missing")
	fs.String(FlagStore, defaultOf("store.url").(string), "the store: empty for SQLite under --data, or postgres://USER:PASS@HOST:PORT/DB?sslmode=... (PostgreSQL)")
	fs.String(FlagLogLevel, defaultOf("log.level").(string), "log level: debug, info, warn or error")
}

// AddServeFlags defines the listener flags of `serve`.
func AddServeFlags(fs *pflag.FlagSet) {
	fs.String(FlagIMAPAddr, defaultOf("imap.addr").(string), "IMAP address (STARTTLS when TLS is configured); empty disables")
	fs.String(FlagIMAPSAddr, "", "IMAP over implicit TLS address; empty disables")
	fs.String(FlagPOP3Addr, defaultOf("pop3.addr").(string), "POP3 address (STLS when TLS is configured); empty disables")
	fs.String(FlagPOP3SAddr, "", "POP3 over implicit TLS address; empty disables")
	fs.String(FlagLMTPAddr, defaultOf("lmtp.addr").(string), "LMTP address, host:port or unix:/path; empty disables")
	fs.String(FlagHTTPAddr, defaultOf("http.addr").(string), "HTTP address (health, metrics); empty disables")
	fs.Bool(FlagPprof, false, "mount Go's profiler (net/http/pprof) under /debug/pprof/ on the HTTP listener")
	fs.String(FlagTrace, "", "write a wire trace of every IMAP, POP3 and LMTP session into this directory (credentials masked)")
	fs.Bool(FlagTLSSelfSigned, false, "generate and reuse a self-signed certificate under the data directory")
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
	for _, k := range keys {
		v.SetDefault(k.name, k.def)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AllowEmptyEnv(true)
	v.AutomaticEnv()
	for _, k := range keys {
		if err := v.BindEnv(k.name, EnvVar(k.name)); err != nil {
			return nil, fmt.Errorf("config: bind %s: %w", k.name, err)
		}
	}

	file, explicit := opts.File, opts.File != ""
	if !explicit && opts.Flags != nil {
		if f := opts.Flags.Lookup(FlagConfig); f != nil && f.Changed {
			file, explicit = f.Value.String(), true
		}
	}
	if !explicit {
		if env, ok := os.LookupEnv(EnvPrefix + "_CONFIG"); ok && env != "" {
			file, explicit = env, true
		}
	}
	if !explicit {
		if _, err := os.Stat(DefaultFile); err == nil {
			file = DefaultFile
		}
	}

	cfg := &Config{}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(raw)); err != nil {
			return nil, fmt.Errorf("config: %s: %w", file, err)
		}
		cfg.File = file
		cfg.Warnings = unknownKeys(file, raw)
	}

	if opts.Flags != nil {
		for flag, k := range flagKeys {
			if f := opts.Flags.Lookup(flag); f != nil {
				if err := v.BindPFlag(k, f); err != nil {
					return nil, fmt.Errorf("config: bind --%s: %w", flag, err)
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
	for _, k := range keys {
		v.SetDefault(k.name, k.def)
	}
	cfg := &Config{}
	if err := cfg.fill(v); err != nil {
		return nil, err
	}
	return cfg, nil
}

// unknownKeys lists the keys of a YAML file that Letterbox does not know.
func unknownKeys(file string, raw []byte) []string {
	fv := viper.New()
	fv.SetConfigType("yaml")
	if err := fv.ReadConfig(bytes.NewReader(raw)); err != nil {
		return nil
	}
	known := map[string]bool{}
	for _, k := range keys {
		known[k.name] = true
	}
	var warnings []string
	all := fv.AllKeys()
	sort.Strings(all)
	for _, k := range all {
		if !known[k] {
			warnings = append(warnings, fmt.Sprintf("%s: unknown setting %q ignored", file, k))
		}
	}
	return warnings
}

// fill reads every key from v into cfg and validates it, reporting all problems at once.
func (cfg *Config) fill(v *viper.Viper) error {
	var errs []error
	str := func(k string) string {
		s, err := cast.ToStringE(v.Get(k))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
		return strings.TrimSpace(s)
	}
	boolean := func(k string) bool {
		b, err := cast.ToBoolE(v.Get(k))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: want true or false: %w", k, err))
		}
		return b
	}
	duration := func(k string) time.Duration {
		d, err := cast.ToDurationE(v.Get(k))
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s: want a duration such as 2s, 10m or 1h: %q", k, str(k)))
		}
		return d
	}

	cfg.Data = str("data")
	if cfg.Data == "" {
		errs = append(errs, errors.New("data: the data directory must not be empty"))
	}
	cfg.Store = Store{URL: str("store.url")}
	if err := cfg.Store.validate(); err != nil {
		errs = append(errs, err)
	}
	cfg.Hostname = str("hostname")
	if cfg.Hostname == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			cfg.Hostname = h
		} else {
			cfg.Hostname = "localhost"
		}
	}

	cfg.IMAP = IMAP{Addr: str("imap.addr"), IdleTimeout: duration("imap.idle_timeout")}
	if d, err := parseDays("imap.qresync_retention", str("imap.qresync_retention")); err != nil {
		errs = append(errs, err)
	} else {
		cfg.IMAP.QResyncRetention = d
	}
	if n, err := cast.ToIntE(v.Get("imap.message_limit")); err != nil || n < 0 {
		errs = append(errs, fmt.Errorf("imap.message_limit: want a number of messages, 0 for no limit, got %q", str("imap.message_limit")))
	} else {
		cfg.IMAP.MessageLimit = n
	}
	cfg.IMAPS = Listener{Addr: str("imaps.addr")}
	cfg.POP3 = POP3{
		Addr:        str("pop3.addr"),
		UIDLFormat:  str("pop3.uidl_format"),
		MarkSeen:    boolean("pop3.mark_seen"),
		Delete:      strings.ToLower(str("pop3.delete")),
		Expire:      str("pop3.expire"),
		LoginDelay:  duration("pop3.login_delay"),
		IdleTimeout: duration("pop3.idle_timeout"),
	}
	switch cfg.POP3.Delete {
	case DeleteExpunge, DeleteKeepFlagged, DeleteHide:
	default:
		errs = append(errs, fmt.Errorf("pop3.delete: %q is not one of expunge, keep-flagged, hide", cfg.POP3.Delete))
	}
	if cfg.POP3.UIDLFormat == "" {
		errs = append(errs, errors.New("pop3.uidl_format: must not be empty"))
	}
	if d, err := parseExpire(cfg.POP3.Expire); err != nil {
		errs = append(errs, err)
	} else {
		cfg.POP3.ExpireAfter = d
	}
	cfg.POP3S = Listener{Addr: str("pop3s.addr")}
	cfg.LMTP = LMTP{Addr: str("lmtp.addr"), DetailToFolder: boolean("lmtp.detail_to_folder")}
	cfg.LMTP.DetailDelimiter = str("lmtp.detail_delimiter")
	if strings.ContainsAny(cfg.LMTP.DetailDelimiter, "@\"\r\n\t") {
		errs = append(errs, fmt.Errorf("lmtp.detail_delimiter: %q may not contain @, quotes or white space", cfg.LMTP.DetailDelimiter))
	}
	cfg.HTTP = HTTP{Addr: str("http.addr"), Pprof: boolean("http.pprof")}
	cfg.API = API{Enabled: boolean("api.enabled"), Token: str("api.token")}
	cfg.Inspector = Inspector{Enabled: boolean("inspector.enabled")}
	cfg.Trace.Dir = str("trace.dir")
	if size, err := datasize.Parse(str("trace.body_limit")); err != nil {
		errs = append(errs, fmt.Errorf("trace.body_limit: %w", err))
	} else {
		cfg.Trace.BodyLimit = size
	}

	cfg.TLS = TLS{Cert: str("tls.cert"), Key: str("tls.key"), SelfSigned: boolean("tls.self_signed")}
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

	switch ap := strings.ToLower(str("auth.allow_plaintext")); ap {
	case "", "loopback":
		cfg.Auth.AllowPlaintext = nil
	default:
		b, err := strconv.ParseBool(ap)
		if err != nil {
			errs = append(errs, fmt.Errorf("auth.allow_plaintext: want true, false or unset (loopback only), got %q", ap))
		}
		cfg.Auth.AllowPlaintext = &b
	}
	nets, err := parseNetworks("auth.trusted_networks", v.Get("auth.trusted_networks"))
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Auth.TrustedNetworks = nets
	proxies, err := parseNetworks("proxy.trusted_networks", v.Get("proxy.trusted_networks"))
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Proxy = Proxy{TrustedNetworks: proxies, Required: boolean("proxy.required")}
	if cfg.Proxy.Required && len(proxies) == 0 {
		errs = append(errs, errors.New("proxy.required: needs proxy.trusted_networks (the proxies that send the header)"))
	}
	cfg.Auth.FailureDelay = duration("auth.failure_delay")
	// count reads a non-negative number (0 meaning no limit).
	count := func(k string) int {
		n, err := cast.ToIntE(v.Get(k))
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s: want a number, 0 or more, got %q", k, str(k)))
		}
		return n
	}
	cfg.Auth.MaxFailures = count("auth.max_failures")
	cfg.Auth.FailureWindow = duration("auth.failure_window")
	cfg.Auth.BlockDuration = duration("auth.block_duration")
	if cfg.Auth.MaxFailures > 0 && (cfg.Auth.FailureWindow <= 0 || cfg.Auth.BlockDuration <= 0) {
		errs = append(errs, errors.New("auth.failure_window and auth.block_duration: must be more than 0 when auth.max_failures is set"))
	}
	cfg.Limits.MaxConnections = count("limits.max_connections")
	cfg.Limits.MaxConnectionsPerIP = count("limits.max_connections_per_ip")
	cfg.Limits.MaxUserIPConnections = count("limits.max_userip_connections")
	cfg.Limits.Recipients = count("limits.recipients")
	cfg.Limits.MIMEDepth = count("limits.mime_depth")
	if size, err := datasize.Parse(str("limits.header_size")); err != nil {
		errs = append(errs, fmt.Errorf("limits.header_size: %w", err))
	} else {
		cfg.Limits.HeaderSize = size // 0: no limit
	}

	if size, err := datasize.Parse(str("limits.message_size")); err != nil {
		errs = append(errs, fmt.Errorf("limits.message_size: %w", err))
	} else if size <= 0 {
		errs = append(errs, errors.New("limits.message_size: must be more than 0"))
	} else {
		cfg.Limits.MessageSize = size
	}

	cfg.Folders = Folders{
		Sent: str("folders.sent"), Drafts: str("folders.drafts"), Trash: str("folders.trash"),
		Junk: str("folders.junk"), Archive: str("folders.archive"),
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

	cfg.Quota.Grace = str("quota.grace")
	if pct, ok := strings.CutSuffix(cfg.Quota.Grace, "%"); ok {
		p, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || p < 0 || math.IsInf(p, 0) || math.IsNaN(p) {
			errs = append(errs, fmt.Errorf("quota.grace: want a percentage of the quota such as 10%%, a size such as 10M, or 0, got %q", cfg.Quota.Grace))
		}
		cfg.Quota.GracePercent = p
	} else if n, err := datasize.Parse(cfg.Quota.Grace); err != nil {
		errs = append(errs, fmt.Errorf("quota.grace: want a percentage of the quota such as 10%%, a size such as 10M, or 0: %w", err))
	} else {
		cfg.Quota.GraceBytes = n
	}

	if err := cfg.Log.Level.UnmarshalText([]byte(str("log.level"))); err != nil {
		errs = append(errs, fmt.Errorf("log.level: want debug, info, warn or error, got %q", str("log.level")))
	}
	cfg.Log.Format = strings.ToLower(str("log.format"))
	if cfg.Log.Format != "text" && cfg.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format: want text or json, got %q", cfg.Log.Format))
	}

	integer := func(k string) int {
		n, err := cast.ToIntE(v.Get(k))
		if err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s: want a port number 1-65535, got %q", k, str(k)))
		}
		return n
	}
	endpoint := func(proto string) Endpoint {
		p := "public." + proto + "."
		return Endpoint{Host: str(p + "host"), Port: integer(p + "port"), TLS: strings.ToLower(str(p + "tls"))}
	}
	cfg.Public = Public{IMAP: endpoint("imap"), POP3: endpoint("pop3"), SMTP: endpoint("smtp")}
	errs = append(errs, cfg.resolvePublic()...)

	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
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
