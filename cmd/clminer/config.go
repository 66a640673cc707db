package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"clminer/stratum"
)

// filePool is one entry of the config file's pools list.
type filePool struct {
	URL                     string  `yaml:"url"`
	User                    string  `yaml:"user"`
	Pass                    string  `yaml:"pass"`
	TLSInsecure             bool    `yaml:"tls-insecure"`
	Fingerprint             string  `yaml:"tls-fingerprint"`
	VersionRolling          *bool   `yaml:"version-rolling"`
	ExtranonceSubscribe     bool    `yaml:"extranonce-subscribe"`
	SuggestDifficulty       float64 `yaml:"suggest-difficulty"`
	AllowReconnectAnyDomain bool    `yaml:"allow-reconnect-any-domain"`
}

// fileConfig is the YAML config file: a pools list plus any `mine` flag by
// its long name. Flags and CLMINER_* variables win over the file.
type fileConfig struct {
	Pools    []filePool
	Settings map[string]any
}

func loadConfigFile(path string) (*fileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config %s: %v", path, oneLine(err))
	}
	fc := &fileConfig{Settings: map[string]any{}}
	for key, node := range raw {
		if key == "pools" {
			dec := yaml.NewDecoder(bytes.NewReader(mustMarshal(&node)))
			dec.KnownFields(true)
			if err := dec.Decode(&fc.Pools); err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("config %s: pools: %v (each pool takes url, user, pass, tls-insecure, tls-fingerprint, version-rolling, extranonce-subscribe, suggest-difficulty, allow-reconnect-any-domain)", path, oneLine(err))
			}
			continue
		}
		var v any
		if err := node.Decode(&v); err != nil {
			return nil, fmt.Errorf("config %s: %s: %v", path, key, oneLine(err))
		}
		fc.Settings[key] = v
	}
	return fc, nil
}

func mustMarshal(n *yaml.Node) []byte {
	b, _ := yaml.Marshal(n)
	return b
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// applyConfigFile sets every flag the file names unless the command line or
// the environment already set it.
func applyConfigFile(c *cli.Context, fc *fileConfig, path string) error {
	known := map[string]bool{}
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	for key, v := range fc.Settings {
		if !known[key] || key == "config" || key == "url" || key == "user" || key == "pass" {
			return fmt.Errorf("config %s: unknown setting %q (settings are `clminer mine` flag names; pools go in a pools: list)", path, key)
		}
		if c.IsSet(key) {
			continue
		}
		if _, isList := v.([]any); isList {
			return fmt.Errorf("config %s: %s takes one value, not a list", path, key)
		}
		if err := c.Set(key, fmt.Sprint(v)); err != nil {
			return fmt.Errorf("config %s: %s: %v", path, key, err)
		}
	}
	return nil
}

// poolsFromFlags pairs each -o with the -u and -p given in the same position,
// as cgminer does.
func poolsFromFlags(c *cli.Context, fc *fileConfig) ([]stratum.PoolConfig, error) {
	urls, users, passes := c.StringSlice("url"), c.StringSlice("user"), c.StringSlice("pass")
	rolling := c.Bool("version-rolling")
	var pools []stratum.PoolConfig
	if len(urls) == 0 && fc != nil {
		for i, p := range fc.Pools {
			if p.URL == "" || p.User == "" {
				return nil, fmt.Errorf("config: pool %d needs a url and a user", i+1)
			}
			pc := stratum.PoolConfig{URL: p.URL, User: p.User, Pass: p.Pass, TLSInsecure: p.TLSInsecure || c.Bool("tls-insecure"),
				Fingerprint: p.Fingerprint, VersionRolling: rolling, ExtranonceSubscribe: p.ExtranonceSubscribe,
				SuggestDifficulty: p.SuggestDifficulty, AllowReconnectAnyDomain: p.AllowReconnectAnyDomain}
			if p.VersionRolling != nil {
				pc.VersionRolling = *p.VersionRolling
			}
			if pc.Pass == "" {
				pc.Pass = "x"
			}
			pools = append(pools, pc)
		}
		if len(pools) > 0 {
			return pools, nil
		}
	}
	if len(urls) == 0 {
		return nil, errors.New("no pool: give -o stratum+tcp://host:port -u user [-p pass] (repeat for backups), or a config file with a pools: list")
	}
	if len(users) != len(urls) {
		return nil, fmt.Errorf("%d pools (-o) but %d users (-u): give one -u after each -o", len(urls), len(users))
	}
	if len(passes) > len(urls) {
		return nil, fmt.Errorf("%d passwords (-p) for %d pools (-o)", len(passes), len(urls))
	}
	fps := c.StringSlice("tls-fingerprint")
	if len(fps) > len(urls) {
		return nil, fmt.Errorf("%d --tls-fingerprint values for %d pools: give them in pool order", len(fps), len(urls))
	}
	for i, u := range urls {
		pc := stratum.PoolConfig{URL: u, User: users[i], Pass: "x", TLSInsecure: c.Bool("tls-insecure"), VersionRolling: rolling,
			ExtranonceSubscribe: c.Bool("extranonce-subscribe"), SuggestDifficulty: c.Float64("suggest-difficulty"),
			AllowReconnectAnyDomain: c.Bool("allow-reconnect-any-domain")}
		if i < len(passes) {
			pc.Pass = passes[i]
		}
		if i < len(fps) {
			pc.Fingerprint = fps[i]
		}
		pools = append(pools, pc)
	}
	return pools, nil
}
