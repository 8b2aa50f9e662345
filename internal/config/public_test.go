package config

import (
	"strings"
	"testing"
)

func TestPublicEndpoints(t *testing.T) {
	tests := []struct {
		name             string
		file             string
		imap, pop3, smtp Endpoint
	}{
		{
			name: "defaults: plain listeners, no TLS, no SMTP",
			file: "hostname: mail.example.com\n",
			imap: Endpoint{"mail.example.com", 1143, TLSNone},
			pop3: Endpoint{"mail.example.com", 1110, TLSNone},
		},
		{
			name: "TLS configured: STARTTLS on the plain listeners",
			file: "hostname: mx.example.com\ntls:\n  self_signed: true\nimap:\n  addr: \":143\"\npop3:\n  addr: \":110\"\n",
			imap: Endpoint{"mx.example.com", 143, TLSStartTLS},
			pop3: Endpoint{"mx.example.com", 110, TLSStartTLS},
		},
		{
			name: "implicit TLS listeners win",
			file: "hostname: mx.example.com\ntls:\n  self_signed: true\nimaps:\n  addr: \":993\"\npop3s:\n  addr: \"0.0.0.0:0\"\n",
			imap: Endpoint{"mx.example.com", 993, TLSImplicit},
			pop3: Endpoint{"mx.example.com", 995, TLSImplicit},
		},
		{
			name: "explicit public settings, SMTP submission",
			file: "hostname: internal\npublic:\n  imap:\n    host: imap.example.com\n    port: 993\n" +
				"  pop3:\n    host: pop.example.com\n    tls: starttls\n  smtp:\n    host: smtp.example.com\n",
			imap: Endpoint{"imap.example.com", 993, TLSImplicit},
			pop3: Endpoint{"pop.example.com", 110, TLSStartTLS},
			smtp: Endpoint{"smtp.example.com", 587, TLSStartTLS},
		},
		{
			name: "SMTP on 465 is implicit TLS; a disabled listener is not offered",
			file: "hostname: h.example\npop3:\n  addr: \"\"\npublic:\n  smtp:\n    host: smtp.example.com\n    port: 465\n",
			imap: Endpoint{"h.example", 1143, TLSNone},
			smtp: Endpoint{"smtp.example.com", 465, TLSImplicit},
		},
		{
			name: "a disabled listener is offered when a public host is named",
			file: "hostname: h.example\nimap:\n  addr: \"\"\npublic:\n  imap:\n    host: imap.example.com\n  smtp:\n    host: s.example\n    tls: ssl\n",
			imap: Endpoint{"imap.example.com", 993, TLSImplicit},
			pop3: Endpoint{"h.example", 1110, TLSNone},
			smtp: Endpoint{"s.example", 465, TLSImplicit},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			cfg, err := Load(LoadOptions{File: writeFile(t, tc.file)})
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Public
			if got.IMAP != tc.imap || got.POP3 != tc.pop3 || got.SMTP != tc.smtp {
				t.Errorf("public =\n imap %+v\n pop3 %+v\n smtp %+v\nwant\n imap %+v\n pop3 %+v\n smtp %+v",
					got.IMAP, got.POP3, got.SMTP, tc.imap, tc.pop3, tc.smtp)
			}
		})
	}
}

func TestPublicFromEnvironment(t *testing.T) {
	clearEnv(t)
	t.Chdir(t.TempDir())
	t.Setenv("LETTERBOX_PUBLIC_IMAP_HOST", "imap.example.org")
	t.Setenv("LETTERBOX_PUBLIC_IMAP_PORT", "10143")
	t.Setenv("LETTERBOX_PUBLIC_IMAP_TLS", "STARTTLS")
	cfg, err := Load(LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Endpoint{"imap.example.org", 10143, TLSStartTLS}); cfg.Public.IMAP != want {
		t.Errorf("public.imap = %+v, want %+v", cfg.Public.IMAP, want)
	}
}

func TestPublicValidation(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"public:\n  imap:\n    tls: maybe\n", "public.imap.tls"},
		{"public:\n  pop3:\n    port: 70000\n", "public.pop3.port"},
		{"public:\n  smtp:\n    host: s.example\n    tls: sometimes\n", "public.smtp.tls"},
		{"public:\n  imap:\n    port: lots\n", "public.imap.port"},
	} {
		clearEnv(t)
		_, err := Load(LoadOptions{File: writeFile(t, tc.file)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error = %v, want one mentioning %q", tc.file, err, tc.want)
		}
	}
}
