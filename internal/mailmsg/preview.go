package mailmsg

// Message previews (RFC 8970, IMAP PREVIEW).
//
// Implementation notes:
//
//   - The preview is computed once, at delivery, from the parse the spool does anyway
//     (Spooled.fill), and kept with the stored body (bodies.preview), so that FETCH
//     PREVIEW costs a column read. Every copy of a message shares its body, and so its
//     preview.
//   - The text comes from the message's first text/plain part that is not an attachment,
//     else its first such text/html part with the markup dropped; decoded (transfer
//     encoding, then charset to UTF-8), every run of white space made one space, control
//     characters dropped, and cut at PreviewMax characters (code points). RFC 8970 §3.1:
//     the server SHOULD keep to 200 characters and MUST NOT give more than 256. A message
//     with nothing to show (no text part, only white space, or undecodable) has the
//     preview "", which RFC 8970 §3.1 asks for when no meaningful preview can be made.
//   - Bodies stored before the store kept previews (schema before the condstore
//     migration) have a NULL preview. The first MetadataOf asking for it computes it from
//     the stored message and keeps it, in a write that logs no change (a preview is not
//     the message's metadata: its modseq stays). So FETCH PREVIEW, with LAZY or without,
//     always has an answer.

import (
	"html"
	"io"
	"strings"
	"unicode"

	"github.com/emersion/go-message"
)

// PreviewMax is the most characters (Unicode code points) a preview has (RFC 8970 §3.1:
// SHOULD be at most 200).
const PreviewMax = 200

// previewReadMax bounds the decoded octets of a text part read to make its preview: far
// more than 200 characters need, even in markup, and little to read.
const previewReadMax = 64 << 10

// Preview makes the preview text of the parsed message, reading its text parts from r.
func (p *Parser) Preview(r io.ReaderAt) string {
	pick := func(subtype string) (textPart, bool) {
		for _, t := range p.texts {
			if t.subtype == subtype && t.disposition != "attachment" {
				return t, true
			}
		}
		return textPart{}, false
	}
	t, ok := pick("plain")
	if !ok {
		if t, ok = pick("html"); !ok {
			return ""
		}
	}
	ent, _ := message.New(message.Header{Header: t.header}, io.NewSectionReader(r, t.start, t.end-t.start))
	if ent == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(ent.Body, previewReadMax))
	text := strings.ToValidUTF8(string(b), "\uFFFD")
	if t.subtype == "html" {
		text = htmlText(text)
	}
	return previewText(text)
}

// previewText collapses white space, drops control characters and cuts s at PreviewMax
// characters.
func previewText(s string) string {
	var b strings.Builder
	n := 0
	space := false
	for _, r := range s {
		if n >= PreviewMax {
			break
		}
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r):
			continue
		}
		if space {
			if n+1 >= PreviewMax {
				break
			}
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// htmlText is the text of an HTML document, roughly, for a preview: tags, comments and
// the content of <script>, <style> and <head> dropped, entities decoded. A tag that ends a
// block becomes a space, so that words of two paragraphs do not run together.
func htmlText(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(html.UnescapeString(s))
			break
		}
		b.WriteString(html.UnescapeString(s[:i]))
		s = s[i:]
		if strings.HasPrefix(s, "<!--") {
			end := strings.Index(s, "-->")
			if end < 0 {
				break
			}
			s = s[end+3:]
			continue
		}
		end := strings.IndexByte(s, '>')
		if end < 0 {
			break
		}
		closingTag := strings.HasPrefix(s, "</")
		tag := strings.ToLower(strings.TrimLeft(s[1:end], "/"))
		if f := strings.FieldsFunc(tag, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '/' }); len(f) > 0 {
			tag = f[0]
		}
		s = s[end+1:]
		switch {
		case !closingTag && (tag == "script" || tag == "style" || tag == "head" || tag == "title"):
			// Skip to the closing tag (its absence drops the rest).
			closing := strings.Index(strings.ToLower(s), "</"+tag)
			if closing < 0 {
				return b.String()
			}
			s = s[closing:]
			if gt := strings.IndexByte(s, '>'); gt >= 0 {
				s = s[gt+1:]
			} else {
				s = ""
			}
			b.WriteByte(' ')
		case blockTags[tag]:
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// blockTags are the HTML elements whose start or end separates words; other tags (<b>,
// <span>, <a>) do not.
var blockTags = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "body": true, "br": true,
	"dd": true, "div": true, "dl": true, "dt": true, "footer": true, "h1": true, "h2": true,
	"h3": true, "h4": true, "h5": true, "h6": true, "header": true, "hr": true, "html": true,
	"li": true, "ol": true, "p": true, "pre": true, "section": true, "table": true, "td": true,
	"th": true, "tr": true, "ul": true,
}
