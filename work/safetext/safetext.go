package safetext

import (
	"strings"
	"unicode/utf8"
)

// LabelMax is the most bytes a metric label value taken from a peer keeps:
// enough for any reason a pool or node really sends, short enough that a
// bounded set of them keeps /metrics small.
const LabelMax = 80

const ellipsis = "..."

// Clip returns s as valid UTF-8 of at most max bytes: bytes that are not
// UTF-8 become U+FFFD, and a longer text is cut on a rune boundary and ends
// in "..." (within max). Text that already fits is returned as it is,
// without copying.
func Clip(s string, max int) string {
	if max <= 0 {
		return ""
	}
	// First pass: the length after replacing invalid bytes, stopping as soon
	// as it is known not to fit, so a 1 MiB line costs max bytes of work.
	n, valid, fits := 0, true, true
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		w := size
		if r == utf8.RuneError && size == 1 {
			valid, w = false, utf8.RuneLen(utf8.RuneError)
		}
		if n+w > max {
			fits = false
			break
		}
		n += w
		i += size
	}
	if fits && valid {
		return s
	}
	limit, mark := max, ""
	if !fits && max > len(ellipsis) {
		limit, mark = max-len(ellipsis), ellipsis
	}
	var b strings.Builder
	b.Grow(min(max, len(s)+2*len(ellipsis)))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		// An invalid byte decodes as (RuneError, 1) and is written as U+FFFD.
		if b.Len()+utf8.RuneLen(r) > limit {
			break
		}
		b.WriteRune(r)
		i += size
	}
	b.WriteString(mark)
	return b.String()
}

// Label is Clip for a metric label value (LabelMax bytes).
func Label(s string) string { return Clip(s, LabelMax) }

// URL returns raw without any user information (user:password@), whether
// or not raw parses as a URL, for an error message that quotes it. Everything
// from the start of the authority (after the first "://", or from the start
// when there is none or an '@' comes before it) to the last '@' goes: a password holding '/', '#' or an unescaped '@' is still
// covered, and a path '@' only costs some of the address in the message.
func URL(raw string) string {
	at := strings.LastIndexByte(raw, '@')
	if at < 0 {
		return raw
	}
	start := 0
	if i := strings.Index(raw[:at], "://"); i >= 0 && !strings.Contains(raw[:i], "@") {
		start = i + len("://")
	}
	return raw[:start] + "<redacted>@" + raw[at+1:]
}

// HasUserinfo reports whether raw carries user information that URL would
// drop: an '@' anywhere after the scheme.
func HasUserinfo(raw string) bool { return URL(raw) != raw }
