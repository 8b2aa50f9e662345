package inspector

import (
	"fmt"
	"net/http"
	"time"
)

// Timings of the event stream.
const (
	// keepAliveInterval sends a comment on a quiet stream, so proxies and browsers keep it.
	keepAliveInterval = 25 * time.Second
	// activityInterval is how often the sessions and transcripts pages are told to look
	// again: sessions come and go without touching the store.
	activityInterval = 2 * time.Second
	// retryMillis is how soon a browser reconnects a dropped stream (the SSE retry field).
	retryMillis = 2000
)

// events is the event stream a page follows (GET /events, text/event-stream, as the HTML
// Living Standard's "Server-sent events" defines it): one "change" event right away, so
// that a change between rendering the page and opening the stream is not missed, then one
// after each of the store's wake-ups: for one account with ?account=ADDRESS, for any
// account without it; with ?activity=1 also every activityInterval. It ends when the
// client goes away or Shutdown is called.
func (in *Inspector) events(w http.ResponseWriter, r *http.Request) error {
	var wake <-chan struct{}
	var cancel func()
	if address := r.URL.Query().Get("account"); address != "" {
		a, err := in.opts.Store.LookupAccount(r.Context(), address)
		if err != nil {
			return err
		}
		wake, cancel = in.opts.Store.Watch(a.ID)
	} else {
		wake, cancel = in.opts.Store.WatchAll()
	}
	defer cancel()
	var activity <-chan time.Time
	if r.URL.Query().Get("activity") != "" {
		t := time.NewTicker(activityInterval)
		defer t.Stop()
		activity = t.C
	}
	keepAlive := time.NewTicker(keepAliveInterval)
	defer keepAlive.Stop()

	select {
	case <-in.quit:
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return nil
	default:
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	rc := http.NewResponseController(w)
	send := func(s string) bool {
		if _, err := fmt.Fprint(w, s); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(fmt.Sprintf("retry: %d\n\nevent: change\ndata: \n\n", retryMillis)) {
		return nil
	}
	for {
		var msg string
		select {
		case <-r.Context().Done():
			return nil
		case <-in.quit:
			return nil
		case <-wake:
			msg = "event: change\ndata: \n\n"
		case <-activity:
			msg = "event: change\ndata: \n\n"
		case <-keepAlive.C:
			msg = ": keep-alive\n\n"
		}
		if !send(msg) {
			return nil
		}
	}
}
