// Package benchcorpus generates the messages Letterbox's benchmarks use: cmd/letterbox-bench
// against any server, and the Go benchmarks of the store and the protocols.
//
// Implementation notes: message i is a deterministic function of (Seed, i), so every run and
// every server sees the same bytes and any message can be built without the ones before it.
package benchcorpus

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// DefaultWord is the search term the corpus puts into one message in a hundred; it occurs
// nowhere else, so SEARCH TEXT "word" over n corpus messages finds exactly Hits(n).
const DefaultWord = "zyzzogeton"

// corpusEpoch is the Date of message 0; message i is dated i minutes later.
var corpusEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fillerWords are the words the body text is drawn from; none contains DefaultWord.
var fillerWords = strings.Fields(`the of and to in is was for on that with as by at from this
have are be not or which but one all were there when can more an their has been its also
mailbox server message folder delivery protocol client session store index fetch append
search header body attachment report meeting schedule invoice project review draft update
quarterly budget weekly notes summary agenda minutes release deadline request approval`)

// Corpus generates the benchmark messages: deterministic functions of (seed, index), so
// that every run and every server sees the same bytes, and any message can be built
// without the ones before it (LMTP senders and mixed clients build theirs on the fly).
//
// Message i is about 4 KB; every fifth (i%5 == 0) is multipart/mixed with a text part and
// a small base64 attachment; every hundredth (i%100 == 7) has Word in its body.
type Corpus struct {
	Seed int64
	Word string
}

// hasWord reports whether message i carries the search word.
func hasWord(i int) bool { return i%100 == 7 }

// Hits is the number of messages among 0..n-1 that carry the search word.
func Hits(n int) int {
	if n <= 7 {
		return 0
	}
	return (n-8)/100 + 1
}

// Message returns message i, CRLF line endings throughout.
func (c Corpus) Message(i int) []byte {
	word := c.Word
	if word == "" {
		word = DefaultWord
	}
	r := rand.New(rand.NewPCG(uint64(c.Seed), uint64(i)))
	var b strings.Builder
	fmt.Fprintf(&b, "From: Sender %d <sender%d@bench.example>\r\n", i%37, i%37)
	fmt.Fprintf(&b, "To: Bench User <bench@bench.example>\r\n")
	fmt.Fprintf(&b, "Subject: %s %s %d\r\n", pick(r), pick(r), i)
	fmt.Fprintf(&b, "Date: %s\r\n", corpusEpoch.Add(time.Duration(i)*time.Minute).Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%d.%d@bench.example>\r\n", i, c.Seed)
	b.WriteString("MIME-Version: 1.0\r\n")
	multipart := i%5 == 0
	textSize := 3800
	if multipart {
		textSize = 2400
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n", i)
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", i)
	} else {
		b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
	}
	writeText(&b, r, textSize, hasWord(i), word)
	if multipart {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: application/octet-stream\r\n", i)
		fmt.Fprintf(&b, "Content-Disposition: attachment; filename=\"data%d.bin\"\r\n", i)
		b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
		raw := make([]byte, 900)
		for k := range raw {
			raw[k] = byte(r.Uint32())
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		for len(enc) > 76 {
			b.WriteString(enc[:76])
			b.WriteString("\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc)
		fmt.Fprintf(&b, "\r\n--b%d--\r\n", i)
	}
	return []byte(b.String())
}

func pick(r *rand.Rand) string { return fillerWords[r.IntN(len(fillerWords))] }

// writeText writes about size bytes of filler in lines of at most 72 characters, with word
// once in the middle when withWord is set.
func writeText(b *strings.Builder, r *rand.Rand, size int, withWord bool, word string) {
	written, line := 0, 0
	wordAt := size / 2
	for written < size {
		w := pick(r)
		if withWord && written >= wordAt {
			w, withWord = word, false
		}
		if line > 0 && line+1+len(w) > 72 {
			b.WriteString("\r\n")
			written += 2
			line = 0
		}
		if line > 0 {
			b.WriteByte(' ')
			written++
			line++
		}
		b.WriteString(w)
		written += len(w)
		line += len(w)
	}
	b.WriteString("\r\n")
}
