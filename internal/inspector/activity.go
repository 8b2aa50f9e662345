package inspector

import (
	"cmp"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
)

// Limits of the transcripts pages.
const (
	latestTraces = 100     // transcripts listed, newest first
	traceShowMax = 1 << 20 // octets of one transcript shown on its page
)

// activityPage is what the sessions and transcripts pages show when their provider is
// there: the event stream that ticks, and the fallback refresh.
func activityPage(p page, enabled bool) page {
	if enabled {
		p.Events, p.Refresh = "/events?activity=1", refreshSeconds
	}
	return p
}

// protocolOrder is the order of the sessions page's sections.
var protocolOrder = []string{"imap", "pop3", "lmtp"}

type sessionGroup struct {
	Protocol string
	Sessions []Session
}

type sessionsView struct {
	Enabled bool
	Groups  []sessionGroup
	Total   int
}

func (in *Inspector) sessions(w http.ResponseWriter, r *http.Request) error {
	var v sessionsView
	if in.opts.Sessions != nil {
		v.Enabled = true
		byProto := map[string][]Session{}
		for _, s := range in.opts.Sessions.Sessions() {
			byProto[s.Protocol] = append(byProto[s.Protocol], s)
			v.Total++
		}
		protos := slices.Clone(protocolOrder)
		for p := range byProto {
			if !slices.Contains(protos, p) {
				protos = append(protos, p)
			}
		}
		for _, p := range protos {
			ss := byProto[p]
			slices.SortFunc(ss, func(a, b Session) int { return a.Started.Compare(b.Started) })
			v.Groups = append(v.Groups, sessionGroup{Protocol: p, Sessions: ss})
		}
	}
	in.render(w, http.StatusOK, "sessions", activityPage(page{Title: "Sessions", Nav: "sessions",
		Crumbs: []crumb{{"Sessions", "/sessions"}}}, v.Enabled), v)
	return nil
}

type tracesView struct {
	Enabled bool
	Traces  []Trace
	Total   int
}

// traces lists the transcripts newest first, at most latestTraces of them.
func (in *Inspector) traces(w http.ResponseWriter, r *http.Request) error {
	var v tracesView
	if in.opts.Traces != nil {
		ts, err := in.opts.Traces.Traces()
		if err != nil {
			return err
		}
		slices.SortFunc(ts, func(a, b Trace) int {
			return cmp.Or(b.Started.Compare(a.Started), strings.Compare(b.Name, a.Name))
		})
		v = tracesView{Enabled: true, Traces: ts[:min(len(ts), latestTraces)], Total: len(ts)}
	}
	in.render(w, http.StatusOK, "traces", activityPage(page{Title: "Transcripts", Nav: "traces",
		Crumbs: []crumb{{"Transcripts", "/traces"}}}, v.Enabled), v)
	return nil
}

type traceView struct {
	Trace     Trace
	Text      string
	Truncated bool
}

// trace shows one transcript. Only a name the TraceStore lists is opened, so a crafted
// name ("../x") never reaches it.
func (in *Inspector) trace(w http.ResponseWriter, r *http.Request) error {
	if in.opts.Traces == nil {
		return errNotFound("wire traces are not enabled (serve --trace DIR)")
	}
	ts, err := in.opts.Traces.Traces()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	i := slices.IndexFunc(ts, func(t Trace) bool { return t.Name == name })
	if i < 0 {
		return errNotFound("no transcript named " + name)
	}
	f, err := in.opts.Traces.OpenTrace(name)
	if err != nil {
		return err
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, traceShowMax+1))
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	v := traceView{Trace: ts[i], Text: string(text[:min(len(text), traceShowMax)]), Truncated: len(text) > traceShowMax}
	in.render(w, http.StatusOK, "trace", page{Title: name, Nav: "traces",
		Crumbs: []crumb{{"Transcripts", "/traces"}, {name, traceURL(name)}}}, v)
	return nil
}
