package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSuggest(t *testing.T) {
	cmds := []string{"devices", "bench", "selftest", "mine", "demo", "proxy", "help"}
	for word, want := range map[string]string{
		"mien": "mine", "mine": "mine", "MINE": "mine", "bnech": "bench", "prxy": "proxy", "devcies": "devices",
		"selftets": "selftest", "slftest": "selftest", "deom": "demo",
		"frobnicate": "", "x": "", "benchmarks": "", "mi": "", "miner": "mine",
	} {
		assert.Equal(t, want, suggest(word, cmds), word)
	}
	assert.Equal(t, "user", suggest("usr", []string{"url", "user", "pass"}), "a tie goes to the longer shared start")
	assert.Equal(t, "url", suggest("ulr", []string{"url", "user", "pass"}))
	assert.Equal(t, "tls-fingerprint", suggest("tls-fingerprnt", []string{"tls-insecure", "tls-fingerprint"}))
	assert.Equal(t, 0, editDistance("", ""))
	assert.Equal(t, 3, editDistance("abc", ""))
	assert.Equal(t, 1, editDistance("ab", "ba"))
	assert.Equal(t, 3, editDistance("kitten", "sitting"))
}
