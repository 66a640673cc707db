package main

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuildVersion(t *testing.T) {
	vcs := func(mainVersion, rev, modified string) *debug.BuildInfo {
		info := &debug.BuildInfo{Main: debug.Module{Path: "clminer", Version: mainVersion}}
		if rev != "" {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: "vcs", Value: "git"},
				debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: modified})
		}
		return info
	}
	const rev = "5762429c0ffee5762429c0ffee5762429c0ffee5"
	for _, tc := range []struct {
		name                string
		ldVersion, ldCommit string
		info                *debug.BuildInfo
		version, commit     string
	}{
		{"the Makefile's -X wins", "v1.2.0-3-g5762429-dirty", "5762429", vcs("v0.0.0-20251207000000-5762429c0ffe+dirty", rev, "true"), "v1.2.0-3-g5762429-dirty", "5762429"},
		{"go install of a tag", "", "", vcs("v1.2.0", "", ""), "v1.2.0", "unknown"},
		{"go build stamps a pseudo-version (Go 1.24+)", "", "", vcs("v0.0.0-20251207000000-5762429c0ffe", rev, "false"), "v0.0.0-20251207000000-5762429c0ffe", "5762429"},
		{"(devel), clean tree", "", "", vcs("(devel)", rev, "false"), "5762429", "5762429"},
		{"(devel), modified tree", "", "", vcs("(devel)", rev, "true"), "5762429-dirty", "5762429"},
		{"no VCS (-buildvcs=false, a tarball)", "", "", vcs("(devel)", "", ""), "dev", "unknown"},
		{"no build info", "", "", nil, "dev", "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, c := buildVersion(tc.ldVersion, tc.ldCommit, tc.info)
			assert.Equal(t, tc.version, v)
			assert.Equal(t, tc.commit, c)
		})
	}
}

// The test binary has no -X flags: --version shows what init resolved, never
// the empty string the variables start as.
func TestVersionFlagUsesResolvedVersion(t *testing.T) {
	require.NotEmpty(t, version)
	require.NotEmpty(t, commit)
	res, err := runApp(t, "--version")
	require.NoError(t, err)
	assert.Equal(t, "clminer version "+version+" ("+commit+")", strings.TrimSpace(res.stdout))
}
