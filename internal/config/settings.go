package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cast"
	"github.com/spf13/viper"

	"github.com/letterbox-mail/letterbox/internal/datasize"
	"github.com/letterbox-mail/letterbox/internal/maildrop"
)

// setting is the one declaration of a setting: its dotted key (which also names its
// environment variable, EnvVar), its default as a YAML file would spell it, its flag if it
// has one, and how its value is read into the Config. docs/configuration.md documents every
// setting; TestDocumentedSettings checks that document against this table.
type setting struct {
	key string
	def any
	// docDefault is the default as docs/configuration.md states it, when the value above
	// is only a placeholder that Load resolves ("" for the host name, 0 for a derived port).
	// "" means the default itself: "empty" for "", `[]` for an empty list, else `value`.
	docDefault string
	// flag is the command-line flag that sets it ("" for none), defined by AddGlobalFlags
	// when global (every subcommand) and by AddServeFlags otherwise, with usage as its help.
	flag   string
	global bool
	usage  string
	// read stores the value in cfg; a problem is reported through v and collected, so that
	// Load names every bad setting at once. Checks that involve several settings are
	// Config.validate's.
	read func(cfg *Config, v value)
}

// settings is every setting Letterbox knows, in the order the flags and Keys list them.
var settings = []setting{
	{key: "data", def: "./letterbox-data", flag: FlagData, global: true,
		usage: "data directory (store and generated certificate); created if missing",
		read: func(c *Config, v value) {
			if c.Data = v.str(); c.Data == "" {
				v.fail("the data directory must not be empty")
			}
		}},
	{key: "store.url", def: "", flag: FlagStore, global: true,
		usage: "the store: empty for SQLite under --data, or postgres://USER:PASS@HOST:PORT/DB?sslmode=... (PostgreSQL)",
		read: func(c *Config, v value) {
			c.Store.URL = v.str()
			v.check(c.Store.validate())
		}},
	{key: "store.mmap_size", def: "2G",
		read: func(c *Config, v value) {
			if c.Store.MmapSize = v.size(); c.Store.MmapSize < 0 {
				v.fail("must not be negative")
			}
		}},
	{key: "hostname", def: "", docDefault: "the machine's host name",
		read: func(c *Config, v value) {
			if c.Hostname = v.str(); c.Hostname == "" {
				if h, err := os.Hostname(); err == nil && h != "" {
					c.Hostname = h
				} else {
					c.Hostname = "localhost"
				}
			}
		}},

	{key: "imap.addr", def: "127.0.0.1:1143", flag: FlagIMAPAddr,
		usage: "IMAP address (STARTTLS when TLS is configured); empty disables",
		read:  func(c *Config, v value) { c.IMAP.Addr = v.str() }},
	{key: "imap.idle_timeout", def: "30m",
		read: func(c *Config, v value) { c.IMAP.IdleTimeout = v.duration() }},
	{key: "imap.qresync_retention", def: "30d",
		read: func(c *Config, v value) {
			d, err := parseDays(v.key, v.str())
			v.check(err)
			c.IMAP.QResyncRetention = d
		}},
	{key: "imap.message_limit", def: DefaultMessageLimit,
		read: func(c *Config, v value) {
			n, err := cast.ToIntE(v.raw)
			if err != nil || n < 0 {
				v.fail(fmt.Sprintf("want a number of messages, 0 for no limit, got %q", v.str()))
				return
			}
			c.IMAP.MessageLimit = n
		}},
	{key: "imaps.addr", def: "", flag: FlagIMAPSAddr,
		usage: "IMAP over implicit TLS address; empty disables",
		read:  func(c *Config, v value) { c.IMAPS.Addr = v.str() }},

	{key: "pop3.addr", def: "127.0.0.1:1110", flag: FlagPOP3Addr,
		usage: "POP3 address (STLS when TLS is configured); empty disables",
		read:  func(c *Config, v value) { c.POP3.Addr = v.str() }},
	{key: "pop3.uidl_format", def: maildrop.DefaultUIDLFormat,
		read: func(c *Config, v value) {
			if c.POP3.UIDLFormat = v.str(); c.POP3.UIDLFormat == "" {
				v.fail("must not be empty")
			}
		}},
	{key: "pop3.mark_seen", def: true,
		read: func(c *Config, v value) { c.POP3.MarkSeen = v.boolean() }},
	{key: "pop3.delete", def: DeleteExpunge,
		read: func(c *Config, v value) {
			c.POP3.Delete = strings.ToLower(v.str())
			if maildrop.CheckDeleteMode(c.POP3.Delete) != nil {
				v.fail(fmt.Sprintf("%q is not one of expunge, keep-flagged, hide", c.POP3.Delete))
			}
		}},
	{key: "pop3.expire", def: "NEVER",
		read: func(c *Config, v value) {
			c.POP3.Expire = v.str()
			d, err := parseExpire(c.POP3.Expire)
			v.check(err)
			c.POP3.ExpireAfter = d
		}},
	{key: "pop3.login_delay", def: "0s",
		read: func(c *Config, v value) { c.POP3.LoginDelay = v.duration() }},
	{key: "pop3.idle_timeout", def: "10m",
		read: func(c *Config, v value) { c.POP3.IdleTimeout = v.duration() }},
	{key: "pop3s.addr", def: "", flag: FlagPOP3SAddr,
		usage: "POP3 over implicit TLS address; empty disables",
		read:  func(c *Config, v value) { c.POP3S.Addr = v.str() }},

	{key: "lmtp.addr", def: "127.0.0.1:2424", flag: FlagLMTPAddr,
		usage: "LMTP address, host:port or unix:/path; empty disables",
		read:  func(c *Config, v value) { c.LMTP.Addr = v.str() }},
	{key: "lmtp.detail_delimiter", def: "+",
		read: func(c *Config, v value) {
			c.LMTP.DetailDelimiter = v.str()
			if strings.ContainsAny(c.LMTP.DetailDelimiter, "@\"\r\n\t") {
				v.fail(fmt.Sprintf("%q may not contain @, quotes or white space", c.LMTP.DetailDelimiter))
			}
		}},
	{key: "lmtp.detail_to_folder", def: true,
		read: func(c *Config, v value) { c.LMTP.DetailToFolder = v.boolean() }},

	{key: "http.addr", def: "127.0.0.1:8080", flag: FlagHTTPAddr,
		usage: "HTTP address (health, metrics); empty disables",
		read:  func(c *Config, v value) { c.HTTP.Addr = v.str() }},
	{key: "http.pprof", def: false, flag: FlagPprof,
		usage: "mount Go's profiler (net/http/pprof) under /debug/pprof/ on the HTTP listener",
		read:  func(c *Config, v value) { c.HTTP.Pprof = v.boolean() }},
	{key: "api.enabled", def: false,
		read: func(c *Config, v value) { c.API.Enabled = v.boolean() }},
	{key: "api.token", def: "",
		read: func(c *Config, v value) { c.API.Token = v.str() }},
	{key: "inspector.enabled", def: false,
		read: func(c *Config, v value) { c.Inspector.Enabled = v.boolean() }},
	{key: "trace.dir", def: "", flag: FlagTrace,
		usage: "write a wire trace of every IMAP, POP3 and LMTP session into this directory (credentials masked)",
		read:  func(c *Config, v value) { c.Trace.Dir = v.str() }},
	{key: "trace.body_limit", def: "4K",
		read: func(c *Config, v value) { c.Trace.BodyLimit = v.size() }},

	{key: "tls.cert", def: "",
		read: func(c *Config, v value) { c.TLS.Cert = v.str() }},
	{key: "tls.key", def: "",
		read: func(c *Config, v value) { c.TLS.Key = v.str() }},
	{key: "tls.self_signed", def: false, flag: FlagTLSSelfSigned,
		usage: "generate and reuse a self-signed certificate under the data directory",
		read:  func(c *Config, v value) { c.TLS.SelfSigned = v.boolean() }},

	{key: "auth.allow_plaintext", def: "", docDefault: "empty: loopback only",
		read: func(c *Config, v value) {
			switch ap := strings.ToLower(v.str()); ap {
			case "", "loopback":
				c.Auth.AllowPlaintext = nil // loopback and trusted networks only
			default:
				b, err := strconv.ParseBool(ap)
				if err != nil {
					v.fail(fmt.Sprintf("want true, false or unset (loopback only), got %q", ap))
				}
				c.Auth.AllowPlaintext = &b
			}
		}},
	{key: "auth.trusted_networks", def: []string{},
		read: func(c *Config, v value) {
			nets, err := parseNetworks(v.key, v.raw)
			v.check(err)
			c.Auth.TrustedNetworks = nets
		}},
	{key: "auth.failure_delay", def: "2s",
		read: func(c *Config, v value) { c.Auth.FailureDelay = v.duration() }},
	{key: "auth.max_failures", def: 10,
		read: func(c *Config, v value) { c.Auth.MaxFailures = v.count() }},
	{key: "auth.failure_window", def: "10m",
		read: func(c *Config, v value) { c.Auth.FailureWindow = v.duration() }},
	{key: "auth.block_duration", def: "15m",
		read: func(c *Config, v value) { c.Auth.BlockDuration = v.duration() }},
	{key: "proxy.trusted_networks", def: []string{},
		read: func(c *Config, v value) {
			nets, err := parseNetworks(v.key, v.raw)
			v.check(err)
			c.Proxy.TrustedNetworks = nets
		}},
	{key: "proxy.required", def: false,
		read: func(c *Config, v value) { c.Proxy.Required = v.boolean() }},

	{key: "limits.message_size", def: "50M",
		read: func(c *Config, v value) {
			size, err := datasize.Parse(v.str())
			switch {
			case err != nil:
				v.wrap(err)
			case size <= 0:
				v.fail("must be more than 0")
			default:
				c.Limits.MessageSize = size
			}
		}},
	{key: "limits.max_connections", def: 1000,
		read: func(c *Config, v value) { c.Limits.MaxConnections = v.count() }},
	{key: "limits.max_connections_per_ip", def: 50,
		read: func(c *Config, v value) { c.Limits.MaxConnectionsPerIP = v.count() }},
	{key: "limits.max_userip_connections", def: 10,
		read: func(c *Config, v value) { c.Limits.MaxUserIPConnections = v.count() }},
	{key: "limits.recipients", def: 1000, // Postfix's smtpd_recipient_limit
		read: func(c *Config, v value) { c.Limits.Recipients = v.count() }},
	{key: "limits.header_size", def: "1M", // the header the store keeps for parsing (internal/mailmsg/parse.go)
		read: func(c *Config, v value) { c.Limits.HeaderSize = v.size() }}, // 0: no limit
	{key: "limits.mime_depth", def: 64, // the nesting the store describes whole
		read: func(c *Config, v value) { c.Limits.MIMEDepth = v.count() }},

	{key: "folders.sent", def: "Sent",
		read: func(c *Config, v value) { c.Folders.Sent = v.str() }},
	{key: "folders.drafts", def: "Drafts",
		read: func(c *Config, v value) { c.Folders.Drafts = v.str() }},
	{key: "folders.trash", def: "Trash",
		read: func(c *Config, v value) { c.Folders.Trash = v.str() }},
	{key: "folders.junk", def: "Junk",
		read: func(c *Config, v value) { c.Folders.Junk = v.str() }},
	{key: "folders.archive", def: "Archives", // Thunderbird's name for its archive folder
		read: func(c *Config, v value) { c.Folders.Archive = v.str() }},
	{key: "quota.grace", def: "10%",
		read: func(c *Config, v value) {
			c.Quota.Grace = v.str()
			const want = "want a percentage of the quota such as 10%, a size such as 10M, or 0"
			if pct, ok := strings.CutSuffix(c.Quota.Grace, "%"); ok {
				p, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
				if err != nil || p < 0 || math.IsInf(p, 0) || math.IsNaN(p) {
					v.fail(fmt.Sprintf("%s, got %q", want, c.Quota.Grace))
				}
				c.Quota.GracePercent = p
			} else if n, err := datasize.Parse(c.Quota.Grace); err != nil {
				v.fail(fmt.Sprintf("%s: %v", want, err))
			} else {
				c.Quota.GraceBytes = n
			}
		}},
	{key: "gc.heap_floor", def: "32M",
		read: func(c *Config, v value) {
			if c.GC.HeapFloor = v.size(); c.GC.HeapFloor < 0 {
				v.fail("must not be negative")
			}
		}},
	{key: "log.level", def: "info", flag: FlagLogLevel, global: true,
		usage: "log level: debug, info, warn or error",
		read: func(c *Config, v value) {
			if err := c.Log.Level.UnmarshalText([]byte(v.str())); err != nil {
				v.fail(fmt.Sprintf("want debug, info, warn or error, got %q", v.str()))
			}
		}},
	{key: "log.format", def: "text",
		read: func(c *Config, v value) {
			if c.Log.Format = strings.ToLower(v.str()); c.Log.Format != "text" && c.Log.Format != "json" {
				v.fail(fmt.Sprintf("want text or json, got %q", c.Log.Format))
			}
		}},

	// public.*: "" and 0 mean derived from hostname and the listeners (resolvePublic).
	{key: "public.imap.host", def: "", docDefault: "`hostname`",
		read: func(c *Config, v value) { c.Public.IMAP.Host = v.str() }},
	{key: "public.imap.port", def: 0, docDefault: "derived",
		read: func(c *Config, v value) { c.Public.IMAP.Port = v.port() }},
	{key: "public.imap.tls", def: "", docDefault: "derived",
		read: func(c *Config, v value) { c.Public.IMAP.TLS = strings.ToLower(v.str()) }},
	{key: "public.pop3.host", def: "", docDefault: "`hostname`",
		read: func(c *Config, v value) { c.Public.POP3.Host = v.str() }},
	{key: "public.pop3.port", def: 0, docDefault: "derived",
		read: func(c *Config, v value) { c.Public.POP3.Port = v.port() }},
	{key: "public.pop3.tls", def: "", docDefault: "derived",
		read: func(c *Config, v value) { c.Public.POP3.TLS = strings.ToLower(v.str()) }},
	// Letterbox has no submission server: an unset public.smtp.host offers none.
	{key: "public.smtp.host", def: "",
		read: func(c *Config, v value) { c.Public.SMTP.Host = v.str() }},
	{key: "public.smtp.port", def: 0, docDefault: "`587`",
		read: func(c *Config, v value) { c.Public.SMTP.Port = v.port() }},
	{key: "public.smtp.tls", def: "", docDefault: "`starttls`",
		read: func(c *Config, v value) { c.Public.SMTP.TLS = strings.ToLower(v.str()) }},
}

// Flag names. The flags of settings are declared in the settings table; FlagConfig names
// the file itself.
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

// configEnv names the configuration file (as --config does); it is no setting.
const configEnv = EnvPrefix + "_CONFIG"

// notSettings are the LETTERBOX_* environment variables, or their prefixes (ending in _),
// that are not settings and draw no warning: the test suites' own knobs.
var notSettings = []string{
	EnvPrefix + "_TEST_",         // store engine and PostgreSQL URL of the Go tests
	EnvPrefix + "_BIN",           // the binary the black-box tests run
	EnvPrefix + "_CRASH_",        // cmd/letterbox's crash tests
	EnvPrefix + "_SOAK_",         // cmd/letterbox's soak test
	EnvPrefix + "_STORE_HELPER_", // cmd/letterbox's helper processes
}

// Keys lists every setting's dotted name, in table order.
func Keys() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.key
	}
	return out
}

// EnvVar is the environment variable of a key: imap.addr -> LETTERBOX_IMAP_ADDR.
func EnvVar(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// value is one setting's raw value as viper resolved it, and where its problems go.
type value struct {
	key  string
	raw  any
	errs *[]error
}

func (v value) fail(msg string) { *v.errs = append(*v.errs, fmt.Errorf("%s: %s", v.key, msg)) }

// check records err, which already names the setting.
func (v value) check(err error) {
	if err != nil {
		*v.errs = append(*v.errs, err)
	}
}

// wrap records err, prefixed with the setting's name.
func (v value) wrap(err error) {
	*v.errs = append(*v.errs, fmt.Errorf("%s: %w", v.key, err))
}

func (v value) str() string {
	s, err := cast.ToStringE(v.raw)
	if err != nil {
		v.wrap(err)
	}
	return strings.TrimSpace(s)
}

func (v value) boolean() bool {
	b, err := cast.ToBoolE(v.raw)
	if err != nil {
		*v.errs = append(*v.errs, fmt.Errorf("%s: want true or false: %w", v.key, err))
	}
	return b
}

func (v value) duration() time.Duration {
	d, err := cast.ToDurationE(v.raw)
	if err != nil || d < 0 {
		v.fail(fmt.Sprintf("want a duration such as 2s, 10m or 1h: %q", v.str()))
	}
	return d
}

// count reads a non-negative number (0 meaning no limit).
func (v value) count() int {
	n, err := cast.ToIntE(v.raw)
	if err != nil || n < 0 {
		v.fail(fmt.Sprintf("want a number, 0 or more, got %q", v.str()))
	}
	return n
}

func (v value) port() int {
	n, err := cast.ToIntE(v.raw)
	if err != nil || n < 0 || n > 65535 {
		v.fail(fmt.Sprintf("want a port number 1-65535, got %q", v.str()))
	}
	return n
}

func (v value) size() int64 {
	n, err := datasize.Parse(v.str())
	if err != nil {
		v.wrap(err)
	}
	return n
}

// fill reads every setting from v into cfg and validates it, reporting all problems at once.
func (cfg *Config) fill(v *viper.Viper) error {
	var errs []error
	for _, s := range settings {
		s.read(cfg, value{key: s.key, raw: v.Get(s.key), errs: &errs})
	}
	errs = append(errs, cfg.validate()...)
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// unknownKeys is an error naming every key of a YAML file that is no setting, each with
// the closest setting, or nil.
func unknownKeys(file string, fileKeys []string) error {
	known := map[string]bool{}
	for _, s := range settings {
		known[s.key] = true
	}
	var errs []error
	for _, k := range fileKeys {
		if !known[k] {
			errs = append(errs, fmt.Errorf("%s: unknown setting %q (did you mean %q?)", file, k, closest(k, Keys())))
		}
	}
	return errors.Join(errs...)
}

// unknownEnv warns about each LETTERBOX_* variable of environ that is no setting, with the
// closest setting's variable. Variables listed in notSettings are left alone.
func unknownEnv(environ []string) []string {
	known := map[string]bool{configEnv: true}
	var names []string
	for _, s := range settings {
		known[EnvVar(s.key)] = true
		names = append(names, EnvVar(s.key))
	}
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix+"_") || known[name] || isNotSetting(name) {
			continue
		}
		warnings = append(warnings, fmt.Sprintf("environment: %s is not a setting and is ignored (did you mean %s?)", name, closest(name, names)))
	}
	return warnings
}

func isNotSetting(name string) bool {
	for _, n := range notSettings {
		if name == n || strings.HasSuffix(n, "_") && strings.HasPrefix(name, n) {
			return true
		}
	}
	return false
}

// closest is the candidate nearest to s in edit distance (the first of equals).
func closest(s string, candidates []string) string {
	best, bestDist := "", math.MaxInt
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes (keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
