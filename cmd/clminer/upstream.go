package main

import (
	"fmt"
	"net/url"
	"strings"

	"clminer/stratum"
	"clminer/stratum/v2/channel"
	"clminer/work/gbt"
	"clminer/work/safetext"
)

// upstreamKind is what an entry of the pool list speaks.
type upstreamKind int

const (
	kindPool upstreamKind = iota // Stratum v1: stratum+tcp://, stratum+tls://, stratum+ssl://
	kindV2                       // Stratum V2: stratum2+tcp://host:port/AUTHORITY_KEY
	kindNode                     // a node's RPC, mined solo: http://, https://
)

func (k upstreamKind) String() string {
	switch k {
	case kindV2:
		return "a Stratum V2 pool"
	case kindNode:
		return "a node (solo mining)"
	}
	return "a Stratum v1 pool"
}

// upstream is one entry of the pool list (-o, CLMINER_URL or a config
// file's pools:), parsed once: every later decision (which source to build,
// whether it is TLS, what its solo settings are) reads this instead of
// parsing the URL again.
type upstream struct {
	kind upstreamKind
	pool stratum.PoolURL  // kindPool
	v2   channel.Endpoint // kindV2
	node *url.URL         // kindNode
}

// String is the address as logs and errors show it (never credentials).
func (u upstream) String() string {
	switch u.kind {
	case kindV2:
		return u.v2.String()
	case kindNode:
		return safetext.URL(u.node.String())
	}
	return u.pool.String()
}

// parseUpstream tells the kind by the scheme and parses raw with that
// kind's parser. It is where a pool URL the user gave is read, so it is
// where credentials are kept out of messages: a URL holding user
// information (user:password@, in any shape, parsable or not) is refused
// here, quoting it through safetext.URL, before any parser sees it and
// could echo it in an error about something else ("unknown scheme", "no
// scheme: write ...", a bad port).
func parseUpstream(raw string) (upstream, error) {
	raw = strings.TrimSpace(raw)
	if safetext.HasUserinfo(raw) {
		return upstream{}, fmt.Errorf("URL %q: put the user and password in -u/-p (a config file's user: and pass:), not in the URL", safetext.URL(raw))
	}
	var u upstream
	var err error
	switch {
	case gbt.IsNodeURL(raw):
		u.kind = kindNode
		u.node, err = gbt.ParseNodeURL(raw)
	case channel.IsURL(raw):
		u.kind = kindV2
		u.v2, err = channel.ParseURL(raw)
	default:
		u.kind = kindPool
		u.pool, err = stratum.ParsePoolURL(raw)
	}
	return u, err
}
