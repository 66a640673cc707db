package main

import "runtime/debug"

// Set by the Makefile with -ldflags -X; left empty by `go build` and
// `go install`, which embed the module version and the VCS revision instead
// (resolved in init, so every reader sees one value: --version, the status
// JSON and metrics, the cgminer API, Hive's ver, the Stratum user agent).
var (
	version string
	commit  string
)

func init() {
	info, _ := debug.ReadBuildInfo()
	version, commit = buildVersion(version, commit, info)
}

// buildVersion fills what the linker did not set from the build info: the
// main module's version unless it is "(devel)" (Go 1.24+ stamps a tagged
// or pseudo-version from the VCS), else the revision's 7-digit short form,
// as `git rev-parse --short` gives it, with "-dirty" for a modified tree.
// Without either, "dev" and "unknown".
func buildVersion(version, commit string, info *debug.BuildInfo) (string, string) {
	var rev string
	var dirty bool
	var mainVersion string
	if info != nil {
		mainVersion = info.Main.Version
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	short := rev
	if len(short) > 7 {
		short = short[:7]
	}
	if commit == "" {
		commit = short
		if commit == "" {
			commit = "unknown"
		}
	}
	if version == "" {
		switch {
		case mainVersion != "" && mainVersion != "(devel)":
			version = mainVersion
		case short != "":
			version = short
			if dirty {
				version += "-dirty"
			}
		default:
			version = "dev"
		}
	}
	return version, commit
}

// userAgent is what clminer calls itself to Stratum v1 pools.
func userAgent() string { return "clminer/" + version }
