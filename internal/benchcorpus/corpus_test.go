package benchcorpus

import (
	"bytes"
	"testing"
)

func TestCorpus(t *testing.T) {
	c := Corpus{Seed: 1}
	if !bytes.Equal(c.Message(42), c.Message(42)) {
		t.Fatal("corpus is not deterministic")
	}
	if bytes.Equal(c.Message(42), Corpus{Seed: 2}.Message(42)) {
		t.Error("the seed does not change the corpus")
	}
	var total, multipart, withWord int
	for i := range 1000 {
		m := c.Message(i)
		total += len(m)
		if bytes.Contains(m, []byte("multipart/mixed")) {
			multipart++
		}
		if bytes.Contains(m, []byte(DefaultWord)) {
			withWord++
		}
		if bytes.Contains(bytes.ReplaceAll(m, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("message %d has a bare LF", i)
		}
	}
	if multipart != 200 || withWord != 10 || withWord != Hits(1000) {
		t.Errorf("multipart %d (want 200), with the word %d (want 10, Hits %d)", multipart, withWord, Hits(1000))
	}
	if avg := total / 1000; avg < 3500 || avg > 4500 {
		t.Errorf("average message size %d, want about 4 KB", avg)
	}
}
