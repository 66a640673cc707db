package channel

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"clminer/stratum/v2/noise"
	"clminer/work/safetext"
)

// Scheme is the URL scheme of a Stratum V2 pool.
const Scheme = "stratum2+tcp"

// IsURL tells a V2 pool URL by its scheme.
func IsURL(s string) bool {
	return strings.HasPrefix(strings.ToLower(s), Scheme+"://")
}

// Endpoint is a parsed stratum2+tcp://host:port/AUTHORITY_KEY.
type Endpoint struct {
	Host      string
	Port      uint16
	Authority noise.AuthorityKey
}

// Addr is host:port.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))) }

// String is the URL; the key is public, and is what the operator pinned.
func (e Endpoint) String() string { return Scheme + "://" + e.Addr() + "/" + e.Authority.String() }

// ParseURL checks a V2 pool URL; every error says what to fix, and quotes
// the URL without any user:password@ (safetext.URL), parsable or not.
func ParseURL(s string) (Endpoint, error) {
	var e Endpoint
	q := safetext.URL(s)
	u, err := url.Parse(s)
	if err != nil || !strings.EqualFold(u.Scheme, Scheme) {
		return e, fmt.Errorf("pool URL %q: want %s://host:port/AUTHORITY_KEY", q, Scheme)
	}
	if u.User != nil {
		return e, fmt.Errorf("pool URL %q: put the user in -u, not in the URL", q)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" || port == "" {
		return e, fmt.Errorf("pool URL %q: give host and port (%s://host:port/AUTHORITY_KEY)", q, Scheme)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return e, fmt.Errorf("pool URL %q: bad port %q", q, port)
	}
	key := strings.Trim(u.Path, "/")
	if key == "" {
		return e, fmt.Errorf("pool URL %q: no authority key: append the pool's published key, %s://host:port/KEY", q, Scheme)
	}
	if e.Authority, err = noise.ParseAuthorityKey(key); err != nil {
		return e, fmt.Errorf("pool URL %q: %w", q, err)
	}
	e.Host, e.Port = host, uint16(p)
	return e, nil
}
