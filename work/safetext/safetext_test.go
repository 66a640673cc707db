package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestClipCutsOnRuneBoundaries(t *testing.T) {
	cjk := strings.Repeat("拒绝", 20) // 120 bytes
	for _, tc := range []struct {
		in, want string
		max      int
	}{
		{"short", "short", 80},
		{"", "", 80},
		{strings.Repeat("x", 79) + "été", strings.Repeat("x", 77) + "...", 80},
		{strings.Repeat("x", 70) + "étéété", strings.Repeat("x", 70) + "été...", 79},
		{cjk, strings.Repeat("拒绝", 12) + "拒...", 80},
		{"bad \xff byte", "bad \uFFFD byte", 80},
		{"\xff\xfe\xfd", "\uFFFD\uFFFD\uFFFD", 80},
		{"\xff\xfe\xfd", "\uFFFD...", 8},
		{"ab\xffcd", "ab\uFFFDcd", 7},
		{"été", "é", 2},
		{"abcdef", "a...", 4},
		{"abcdef", "abc", 3},
		{"abc", "", 0},
	} {
		got := Clip(tc.in, tc.max)
		assert.Equal(t, tc.want, got, "Clip(%q, %d)", tc.in, tc.max)
		assert.True(t, utf8.ValidString(got), "%q", got)
		assert.LessOrEqual(t, len(got), max(tc.max, 0))
	}
}

func TestClipKeepsFittingTextWithoutCopy(t *testing.T) {
	s := strings.Repeat("é", 40)
	got := Clip(s, 80)
	assert.Equal(t, s, got)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = Clip(s, 80) }))
}

func TestURLDropsUserInformation(t *testing.T) {
	for in, want := range map[string]string{
		"stratum+tcp://u:S3CRET@host:3333":             "stratum+tcp://<redacted>@host:3333",
		"stratum+tcpx://u:S3CRET@host:3333":            "stratum+tcpx://<redacted>@host:3333",
		"u:S3CRET@host:3333":                           "<redacted>@host:3333",
		"stratum2+tcp://u:S3CRET@host:x/KEY":           "stratum2+tcp://<redacted>@host:x/KEY",
		"http://u:pa/ss@w0rd@127.0.0.1:8332":           "http://<redacted>@127.0.0.1:8332",
		"socks5h://:S3CRET@proxy:1080":                 "socks5h://<redacted>@proxy:1080",
		"stratum+tcp://host:3333":                      "stratum+tcp://host:3333",
		"https://hooks.example/T0KEN?x=1":              "https://hooks.example/T0KEN?x=1",
		"user:S3CRET@stratum+tcp://host:3333@x":        "<redacted>@x",
		"stratum+tcp://u:S3CRET@h:1,stratum+tcp://b:2": "stratum+tcp://<redacted>@h:1,stratum+tcp://b:2",
	} {
		assert.Equal(t, want, URL(in), in)
		assert.NotContains(t, URL(in), "S3CRET")
		assert.Equal(t, want != in, HasUserinfo(in), in)
	}
}

func FuzzClip(f *testing.F) {
	f.Add("x\xffé", 5)
	f.Add(strings.Repeat("拒绝", 20), 80)
	f.Fuzz(func(t *testing.T, s string, max int) {
		max %= 300
		got := Clip(s, max)
		if !utf8.ValidString(got) || len(got) > max && max >= 0 {
			t.Fatalf("Clip(%q, %d) = %q", s, max, got)
		}
		if utf8.ValidString(s) && len(s) <= max && got != s {
			t.Fatalf("Clip changed fitting text %q to %q", s, got)
		}
	})
}
