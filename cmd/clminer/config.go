package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"clminer/stratum"
	"clminer/work/gbt"
	"clminer/work/safetext"
)

// filePool is one entry of the config file's pools list. Its keys are the
// pool flags of `clminer mine`; a key left out inherits the global value
// (flag, then CLMINER_* variable, then the file's top-level setting, then
// the flag's default), so pointers tell "not given" from "given as zero".
type filePool struct {
	URL                     string   `yaml:"url"`
	User                    string   `yaml:"user"`
	Pass                    *string  `yaml:"pass"`
	TLSInsecure             *bool    `yaml:"tls-insecure"`
	Fingerprint             *string  `yaml:"tls-fingerprint"`
	VersionRolling          *bool    `yaml:"version-rolling"`
	ExtranonceSubscribe     *bool    `yaml:"extranonce-subscribe"`
	SuggestDifficulty       *float64 `yaml:"suggest-difficulty"`
	AllowReconnectAnyDomain *bool    `yaml:"allow-reconnect-any-domain"`
	Proxy                   *string  `yaml:"proxy"`
	// A node entry (url: http://...) for solo mining.
	CoinbaseAddr *string `yaml:"coinbase-addr"`
	RPCCookie    *string `yaml:"rpc-cookie"`
}

// poolKeys are the keys a pools: entry takes, for error messages.
const poolKeys = "url, user, pass, tls-insecure, tls-fingerprint, version-rolling, extranonce-subscribe, suggest-difficulty, allow-reconnect-any-domain, proxy, and for a node (url: http://...) coinbase-addr, rpc-cookie"

// fileConfig is the YAML config file: a pools list plus any `mine` flag by
// its long name. Flags and CLMINER_* variables win over the file.
type fileConfig struct {
	Pools    []filePool
	Settings map[string]any
	// Workers names each device's worker (device id -> the part after the
	// pool user's "."), for --worker-per-device.
	Workers map[string]string
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
			if fc.Pools, err = decodePools(&node); err != nil {
				return nil, fmt.Errorf("config %s: %w", path, err)
			}
			continue
		}
		if key == "workers" {
			if err := node.Decode(&fc.Workers); err != nil {
				return nil, fmt.Errorf("config %s: workers: want a mapping of device id to worker name, e.g. cpu: rig1-cpu (%v)", path, oneLine(err))
			}
			for dev, name := range fc.Workers {
				if name == "" || len(name) > stratum.MaxWorkerLen || strings.ContainsAny(name, " \t\n") {
					return nil, fmt.Errorf("config %s: workers: %s: %q is not a worker name (1..%d characters, no spaces)", path, dev, name, stratum.MaxWorkerLen)
				}
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

// decodePools reads the pools list from the file's own nodes, key by key,
// so that a mistake is reported on its line in the file and in the file's
// terms (the key, the value, what it takes), never as a decoder's message
// about Go types.
func decodePools(n *yaml.Node) ([]filePool, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: pools: want a list of pools, each a mapping such as `- url: stratum+tcp://host:3333` with `user: ...` below it", n.Line)
	}
	pools := make([]filePool, 0, len(n.Content))
	for i, item := range n.Content {
		var p filePool
		budget := maxPoolMerges
		if err := decodePool(&p, poolFields(&p), resolveAlias(item), i+1, &budget); err != nil {
			return nil, err
		}
		pools = append(pools, p)
	}
	return pools, nil
}

// maxPoolMerges bounds the merge keys one pools: entry may pull in, nested
// ones included, so that aliases cannot multiply the work.
const maxPoolMerges = 16

// decodePool sets p's fields from one pools: entry. YAML merge keys
// (`<<: *defaults`, `<<: [*a, *b]`) apply first, so the entry's own keys
// win, and of several merged mappings the first wins, as YAML defines.
func decodePool(p *filePool, fields map[string]reflect.Value, item *yaml.Node, index int, budget *int) error {
	if item.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: pools: pool %d: want keys (url: ..., user: ...), not %s", item.Line, index, describeNode(item))
	}
	for pass := 0; pass < 2; pass++ {
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], resolveAlias(item.Content[j+1])
			if merge := k.Tag == "!!merge" || k.Value == "<<"; merge != (pass == 0) {
				continue
			} else if merge {
				from := []*yaml.Node{v}
				if v.Kind == yaml.SequenceNode {
					from = v.Content
				}
				for m := len(from) - 1; m >= 0; m-- { // the last applied wins
					if *budget--; *budget < 0 {
						return fmt.Errorf("line %d: pools: pool %d: more than %d merged mappings", k.Line, index, maxPoolMerges)
					}
					if err := decodePool(p, fields, resolveAlias(from[m]), index, budget); err != nil {
						return err
					}
				}
				continue
			}
			dst, ok := fields[k.Value]
			if !ok {
				hint := ""
				if s := suggest(k.Value, poolKeyNames()); s != "" {
					hint = fmt.Sprintf("did you mean %q? ", s)
				}
				return fmt.Errorf("line %d: pools: pool %d: unknown key %q (%seach pool takes %s)", k.Line, index, k.Value, hint, poolKeys)
			}
			if v.Kind != yaml.ScalarNode || v.Decode(dst.Interface()) != nil {
				return fmt.Errorf("line %d: pools: pool %d: %s: %s is not %s", v.Line, index, k.Value, describeNode(v), wantOf(dst.Elem().Type()))
			}
		}
	}
	return nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// poolFields maps each pools: key to a pointer to its field in p, from the
// yaml tags of filePool (the one list of keys).
func poolFields(p *filePool) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	v := reflect.ValueOf(p).Elem()
	for i := 0; i < v.NumField(); i++ {
		if tag := v.Type().Field(i).Tag.Get("yaml"); tag != "" {
			out[tag] = v.Field(i).Addr()
		}
	}
	return out
}

func poolKeyNames() []string {
	names := slices.Collect(maps.Keys(poolFields(&filePool{})))
	slices.Sort(names)
	return names
}

// wantOf says in the file's terms what a pool key of type t takes.
func wantOf(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Float64:
		return "a number"
	default:
		return "a single value (text)"
	}
}

// describeNode names a YAML value for an error message: the scalar itself,
// or what kind of structure stands where a value was wanted.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	default:
		return "an alias"
	}
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// applyConfigFile sets every flag the file names unless the command line or
// the environment already set it. Values go through the flag's own parser
// (c.Set), the same path as the command line and CLMINER_* variables, and
// a bad one is explained by the same valueError.
func applyConfigFile(c *cli.Context, fc *fileConfig, path string) error {
	known := map[string]bool{}
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	keys := make([]string, 0, len(fc.Settings))
	for k := range fc.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		v := fc.Settings[key]
		if !known[key] || key == "config" || key == "url" || key == "user" || key == "pass" || key == "help" {
			return fmt.Errorf("config %s: unknown setting %q (settings are `clminer mine` flag names; pools go in a pools: list)", path, key)
		}
		if isSetAnywhere(c, key) {
			continue
		}
		if _, isList := v.([]any); isList {
			return fmt.Errorf("config %s: %s takes one value, not a list", path, key)
		}
		if _, isMap := v.(map[string]any); isMap {
			return fmt.Errorf("config %s: %s takes one value, not a mapping", path, key)
		}
		val := fmt.Sprint(v)
		if err := c.Set(key, val); err != nil {
			return fmt.Errorf("config %s: %s", path, valueError(key+":", val, lookupFlag(c, key), err.Error()))
		}
	}
	return nil
}

// globalPool is what every pool inherits: the pool flags as the command
// line, the environment and the config file's top level set them.
func globalPool(c *cli.Context) stratum.PoolConfig {
	return stratum.PoolConfig{
		Pass:                    "x",
		TLSInsecure:             c.Bool("tls-insecure"),
		VersionRolling:          c.Bool("version-rolling"),
		ExtranonceSubscribe:     c.Bool("extranonce-subscribe"),
		SuggestDifficulty:       c.Float64("suggest-difficulty"),
		AllowReconnectAnyDomain: c.Bool("allow-reconnect-any-domain"),
		Proxy:                   strings.TrimSpace(c.String("proxy")),
	}
}

// poolsFromFlags returns the pools in priority order: the -o list, each
// with the -u and -p in the same position as cgminer does, or else the
// config file's pools: list, and beside each its URL parsed (parseUpstream,
// once). Every pool inherits the global pool settings unless its file entry
// overrides them. --tls-fingerprint values go, in order, to the TLS pools
// that do not set their own. Every error is one line, found before any
// device is opened, and quotes a URL only without its credentials.
func poolsFromFlags(c *cli.Context, fc *fileConfig) ([]stratum.PoolConfig, []upstream, error) {
	urls, users, passes := c.StringSlice("url"), c.StringSlice("user"), c.StringSlice("pass")
	base := globalPool(c)
	var pools []stratum.PoolConfig
	var ownPin []bool // the pool's file entry sets its own fingerprint
	var ownInsecure []bool
	fromFile := len(urls) == 0 && fc != nil && len(fc.Pools) > 0
	if fromFile {
		if len(users) > 0 || len(passes) > 0 {
			return nil, nil, errors.New("-u/-p given without -o: they pair with the -o in the same position; the config file's pools take user: and pass: in each entry")
		}
		for i, p := range fc.Pools {
			cookie := p.RPCCookie != nil && *p.RPCCookie != "" || c.String("rpc-cookie") != ""
			if p.URL == "" || p.User == "" && !(gbt.IsNodeURL(p.URL) && cookie) {
				return nil, nil, fmt.Errorf("config: pool %d needs a url and a user (a node's RPC user, unless it has an rpc-cookie)", i+1)
			}
			pc := base
			pc.URL, pc.User = p.URL, p.User
			if p.Pass != nil {
				pc.Pass = *p.Pass
			}
			if p.TLSInsecure != nil {
				pc.TLSInsecure = *p.TLSInsecure
			}
			if p.Fingerprint != nil {
				pc.Fingerprint = *p.Fingerprint
			}
			if p.VersionRolling != nil {
				pc.VersionRolling = *p.VersionRolling
			}
			if p.ExtranonceSubscribe != nil {
				pc.ExtranonceSubscribe = *p.ExtranonceSubscribe
			}
			if p.SuggestDifficulty != nil {
				pc.SuggestDifficulty = *p.SuggestDifficulty
			}
			if p.AllowReconnectAnyDomain != nil {
				pc.AllowReconnectAnyDomain = *p.AllowReconnectAnyDomain
			}
			if p.Proxy != nil {
				pc.Proxy = strings.TrimSpace(*p.Proxy) // "" reaches this pool directly
			}
			pools = append(pools, pc)
			ownPin = append(ownPin, p.Fingerprint != nil)
			ownInsecure = append(ownInsecure, p.TLSInsecure != nil && *p.TLSInsecure)
		}
	} else {
		if len(urls) == 0 {
			return nil, nil, errors.New("no pool: give -o stratum+tcp://host:port -u user [-p pass] (repeat for backups), or a config file with a pools: list")
		}
		if len(users) == 0 && c.String("rpc-cookie") != "" && !slices.ContainsFunc(urls, func(u string) bool { return !gbt.IsNodeURL(u) }) {
			users = make([]string, len(urls)) // nodes that log in with the cookie
		}
		if len(users) != len(urls) {
			return nil, nil, fmt.Errorf("%d pools (-o) but %d users (-u): give one -u after each -o", len(urls), len(users))
		}
		if len(passes) > len(urls) {
			return nil, nil, fmt.Errorf("%d passwords (-p) for %d pools (-o): give at most one -p after each -o", len(passes), len(urls))
		}
		for i, u := range urls {
			pc := base
			pc.URL, pc.User = u, users[i]
			if i < len(passes) {
				pc.Pass = passes[i]
			}
			pools = append(pools, pc)
			ownPin = append(ownPin, false)
			ownInsecure = append(ownInsecure, false)
		}
	}

	var tlsPools []int // TLS pools that take a --tls-fingerprint value
	ups := make([]upstream, len(pools))
	for i := range pools {
		pc := &pools[i]
		name := fmt.Sprintf("pool %d", i+1)
		if strings.Contains(pc.URL, ",") {
			return nil, nil, fmt.Errorf("%s: URL %q holds a comma: give one URL per -o (CLMINER_URL holds one pool; list several in a config file's pools:)", name, safetext.URL(pc.URL))
		}
		up, err := parseUpstream(pc.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		ups[i] = up
		name = fmt.Sprintf("pool %d (%s)", i+1, up)
		// Every kind dials through the proxy (nodes and V2 pools too), so
		// every kind's is checked here, before a device opens.
		if pc.Proxy != "" {
			if _, err := stratum.ParseProxyURL(pc.Proxy); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		switch up.kind {
		case kindNode:
			if pc.Fingerprint != "" || ownInsecure[i] {
				return nil, nil, fmt.Errorf("%s: tls-fingerprint and tls-insecure are for stratum+tls:// pools, not a node URL", name)
			}
			continue // checked with its solo settings in nodeSettings
		case kindV2:
			if err := checkV2Pool(name, *pc, ownInsecure[i]); err != nil {
				return nil, nil, err
			}
			continue
		}
		u := up.pool
		if strings.TrimSpace(pc.User) == "" {
			return nil, nil, fmt.Errorf("%s: the user (worker name) is empty", name)
		}
		if !u.TLS {
			if pc.Fingerprint != "" {
				return nil, nil, fmt.Errorf("%s: tls-fingerprint is set but the pool is not TLS: use stratum+tls:// (or remove the fingerprint)", name)
			}
			if ownInsecure[i] {
				return nil, nil, fmt.Errorf("%s: tls-insecure is set but the pool is not TLS: use stratum+tls:// (or remove tls-insecure)", name)
			}
			pc.TLSInsecure = false // the global flag applies to TLS pools only
			continue
		}
		if !ownPin[i] {
			tlsPools = append(tlsPools, i)
		}
	}
	if fps := c.StringSlice("tls-fingerprint"); len(fps) > 0 {
		if len(tlsPools) == 0 {
			what := "no pool is stratum+tls:// or stratum+ssl://"
			if fromFile {
				what = "no TLS pool is left without its own tls-fingerprint"
			}
			return nil, nil, fmt.Errorf("%d --tls-fingerprint values but %s: a fingerprint pins a TLS pool's certificate", len(fps), what)
		}
		if len(fps) != len(tlsPools) {
			var names []string
			for _, i := range tlsPools {
				names = append(names, ups[i].String())
			}
			return nil, nil, fmt.Errorf("%d --tls-fingerprint values for %d TLS pools (%s): give one per TLS pool, in pool order ('' leaves one unpinned)",
				len(fps), len(tlsPools), strings.Join(names, ", "))
		}
		for k, i := range tlsPools {
			pools[i].Fingerprint = strings.TrimSpace(fps[k])
		}
	}
	for i, pc := range pools {
		if pc.Fingerprint == "" {
			continue
		}
		if _, err := stratum.ParseFingerprint(pc.Fingerprint); err != nil {
			return nil, nil, fmt.Errorf("pool %d (%s): %w", i+1, ups[i], err)
		}
	}
	return pools, ups, nil
}
