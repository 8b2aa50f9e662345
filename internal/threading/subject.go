package threading

import "strings"

// BaseSubject returns the base subject of a Subject header field (RFC 5256 §2.1): the
// subject with the artifacts mail software adds removed ("Re:", "Fwd:", "[list]",
// "(fwd)", "[fwd: ...]"), which the SUBJECT sort criterion and both threading algorithms
// compare.
//
// subject must already be decoded from RFC 2047 to UTF-8 (store.Envelope.Subject is);
// BaseSubject does the rest of step (1): tabs, CR and LF become spaces and runs of
// spaces become one. The result keeps the case of the input: compare base subjects
// case-insensitively (i;ascii-casemap), as Sort and the threading algorithms do.
func BaseSubject(subject string) string {
	base, _ := baseSubject(subject)
	return base
}

// baseSubject returns the base subject of subject and whether extracting it removed a
// subj-refwd, a "(fwd)" subj-trailer or a subj-fwd-hdr and subj-fwd-trl: RFC 5256 §2.1:
// such a message "is considered to be a reply or forward" for THREAD=REFERENCES (§4
// step 5).
func baseSubject(subject string) (base string, replyOrForward bool) {
	// RFC 5256 §2.1 (1): "Convert all tabs and continuations to space. Convert all
	// multiple spaces to a single space." (RFC 2047 decoding is the caller's.)
	s := collapseWhitespace(subject)
	for {
		// (2) "Remove all trailing text of the subject that matches the subj-trailer
		// ABNF, repeat until no more matches are possible."
		//   subj-trailer = "(fwd)" / WSP
		for {
			if n := len(s); n > 0 && isWSP(s[n-1]) {
				s = s[:n-1]
			} else if hasSuffixFold(s, "(fwd)") {
				s = s[:len(s)-len("(fwd)")]
				replyOrForward = true
			} else {
				break
			}
		}
		// (5) "Repeat (3) and (4) until no matches remain."
		for {
			changed := false
			// (3) "Remove all prefix text of the subject that matches the subj-leader
			// ABNF."
			//   subj-leader = (*subj-blob subj-refwd) / WSP
			for {
				if len(s) > 0 && isWSP(s[0]) {
					s = s[1:]
				} else if n := leaderLen(s); n > 0 {
					s = s[n:]
					replyOrForward = true
				} else {
					break
				}
				changed = true
			}
			// (4) "If there is prefix text of the subject that matches the subj-blob
			// ABNF, and removing that prefix leaves a non-empty subj-base, then remove
			// the prefix text."
			if n := blobLen(s); n > 0 && n < len(s) {
				s = s[n:]
				changed = true
			}
			if !changed {
				break
			}
		}
		// (6) "If the resulting text begins with the subj-fwd-hdr ABNF and ends with
		// the subj-fwd-trl ABNF, remove the subj-fwd-hdr and subj-fwd-trl and repeat
		// from step (2)."
		//   subj-fwd-hdr = "[fwd:"   subj-fwd-trl = "]"
		if len(s) >= len("[fwd:]") && hasPrefixFold(s, "[fwd:") && s[len(s)-1] == ']' {
			s = s[len("[fwd:") : len(s)-1]
			replyOrForward = true
			continue
		}
		// (7) "The resulting text is the "base subject" used in the SORT."
		return s, replyOrForward
	}
}

// collapseWhitespace turns tabs, CR and LF into spaces and every run of spaces into one
// space, copying s only when that changes something.
func collapseWhitespace(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\t' || c == '\r' || c == '\n' || c == ' ' && i+1 < len(s) && isSpaceLike(s[i+1]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		if isSpaceLike(s[i]) {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(s[i])
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

func isSpaceLike(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isWSP: WSP = SP / HTAB (RFC 5234 appendix B.1).
func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// blobLen returns the length of the subj-blob at the start of s, 0 if there is none.
//
//	subj-blob = "[" *BLOBCHAR "]" *WSP
//	BLOBCHAR  = %x01-5a / %x5c / %x5e-7f   ; any CHAR except '[' and ']'
func blobLen(s string) int {
	if len(s) == 0 || s[0] != '[' {
		return 0
	}
	i := 1
	for i < len(s) && s[i] != ']' {
		if s[i] == '[' || s[i] == 0 {
			return 0
		}
		i++
	}
	if i == len(s) {
		return 0
	}
	i++ // ']'
	for i < len(s) && isWSP(s[i]) {
		i++
	}
	return i
}

// leaderLen returns the length of the "*subj-blob subj-refwd" at the start of s, 0 if
// there is none.
//
//	subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
func leaderLen(s string) int {
	i := 0
	for {
		n := blobLen(s[i:])
		if n == 0 {
			break
		}
		i += n
	}
	switch {
	case hasPrefixFold(s[i:], "re"):
		i += 2
	case hasPrefixFold(s[i:], "fwd"):
		i += 3
	case hasPrefixFold(s[i:], "fw"):
		i += 2
	default:
		return 0
	}
	for i < len(s) && isWSP(s[i]) {
		i++
	}
	i += blobLen(s[i:])
	if i < len(s) && s[i] == ':' {
		return i + 1
	}
	return 0
}

// hasPrefixFold reports whether s begins with prefix, ignoring the case of ASCII letters
// (ABNF literals, RFC 5234 §2.3). prefix is lower case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lowerASCII(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && hasPrefixFold(s[len(s)-len(suffix):], suffix)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
