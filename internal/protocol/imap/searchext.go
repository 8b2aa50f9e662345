package imap

import (
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// The search keys of WITHIN (RFC 5032), SAVEDATE (RFC 8514) and OBJECTID (RFC 8474).
// go-imap's SearchCriteria has no field for them, so the parser writes each as a header
// field whose name begins with ':', which no real field name can (RFC 5322 §3.6.8:
// ftext excludes ':'), and compileSearch turns those into extKeys. So they nest under
// NOT and OR like every other key.
const extKeyPrefix = ":"

// Names of the pseudo header fields.
const (
	extOlder             = ":OLDER"       // Value: seconds
	extYounger           = ":YOUNGER"     // Value: seconds
	extSavedBefore       = ":SAVEDBEFORE" // Value: date, 2006-01-02
	extSavedSince        = ":SAVEDSINCE"  // Value: date
	extSavedOn           = ":SAVEDON"     // Value: date
	extSaveDateSupported = ":SAVEDATESUPPORTED"
	extEmailID           = ":EMAILID"  // Value: objectid
	extThreadID          = ":THREADID" // Value: objectid
)

// searchNow is the clock of OLDER and YOUNGER; a variable for tests.
var searchNow = time.Now

// searchKeyExt reads the keys of the extensions above (the key itself already read);
// ok is false for a key it does not know.
func (r *commandReader) searchKeyExt(c *imap.SearchCriteria, key string) (ok bool, err error) {
	add := func(name, value string) {
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: name, Value: value})
	}
	switch key {
	case "OLDER", "YOUNGER":
		// RFC 5032, formal syntax: search-key =/ ( "OLDER" / "YOUNGER" ) SP nz-number
		if err := r.sp(); err != nil {
			return true, err
		}
		n, err := r.nzNumber()
		if err != nil {
			return true, err
		}
		add(extKeyPrefix+key, strconv.FormatUint(uint64(n), 10))
	case "SAVEDBEFORE", "SAVEDON", "SAVEDSINCE":
		// RFC 8514 §4.3: SAVEDBEFORE, SAVEDON, SAVEDSINCE date
		if err := r.sp(); err != nil {
			return true, err
		}
		d, err := r.date()
		if err != nil {
			return true, err
		}
		add(extKeyPrefix+key, d.Format(time.DateOnly))
	case "SAVEDATESUPPORTED":
		add(extSaveDateSupported, "")
	case "EMAILID", "THREADID":
		// RFC 8474, formal syntax: search-key =/ "EMAILID" SP objectid / "THREADID" SP objectid
		if err := r.sp(); err != nil {
			return true, err
		}
		id, err := r.objectID()
		if err != nil {
			return true, err
		}
		add(extKeyPrefix+key, id)
	default:
		return false, nil
	}
	return true, nil
}

// objectID reads an objectid: 1*255(ALPHA / DIGIT / "_" / "-") (RFC 8474, formal syntax).
func (r *commandReader) objectID() (string, error) {
	id, err := r.run(func(b byte) bool {
		return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-'
	}, "an object id")
	if err == nil && len(id) > 255 {
		err = badSyntax("Object id too long")
	}
	return id, err
}

// extKey is one compiled key of the extensions above.
type extKey struct {
	name  string
	n     time.Duration // OLDER, YOUNGER
	day   time.Time     // SAVED*: midnight UTC
	value string        // EMAILID, THREADID
}

// compileExtKey compiles a pseudo header field; ok is false for a real header field.
func compileExtKey(h imap.SearchCriteriaHeaderField) (k extKey, ok bool) {
	if !strings.HasPrefix(h.Key, extKeyPrefix) {
		return extKey{}, false
	}
	k = extKey{name: h.Key, value: h.Value}
	switch h.Key {
	case extOlder, extYounger:
		n, _ := strconv.ParseInt(h.Value, 10, 64)
		k.n = time.Duration(n) * time.Second
	case extSavedBefore, extSavedSince, extSavedOn:
		k.day, _ = time.Parse(time.DateOnly, h.Value)
	}
	return k, true
}

// match tests the key against the message row.
func (k extKey) match(msg *searchMsg, now time.Time) bool {
	m := &msg.meta.Message
	switch k.name {
	case extOlder:
		// RFC 5032 §3: OLDER n matches messages whose INTERNALDATE is more than n
		// seconds before now, YOUNGER n those within n seconds of it.
		return now.Sub(m.InternalDate) > k.n
	case extYounger:
		return now.Sub(m.InternalDate) <= k.n
	case extSavedBefore, extSavedSince, extSavedOn:
		// RFC 8514 §4.3. A message whose save date is not known (stored before the store
		// kept one; FETCH SAVEDATE is NIL) is searched by its INTERNALDATE, the closest
		// date Letterbox has: its save date is no earlier.
		d := m.SaveDate
		if d.IsZero() {
			d = m.InternalDate
		} else {
			d = d.UTC()
		}
		saved := day(d)
		switch k.name {
		case extSavedBefore:
			return saved.Before(k.day)
		case extSavedSince:
			return !saved.Before(k.day)
		}
		return saved.Equal(k.day)
	case extSaveDateSupported:
		// RFC 8514 §4.3: every message of a mailbox that supports the save date, and
		// every Letterbox mailbox does.
		return true
	case extEmailID:
		return m.EmailID() == k.value
	case extThreadID:
		// RFC 8474 §5.2: the messages of the thread; those with no THREADID match none.
		return m.ThreadID() != "" && m.ThreadID() == k.value
	}
	return false
}
