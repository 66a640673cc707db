package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/charmbracelet/log"
	"github.com/urfave/cli/v2"

	"clminer/stratum"
	"clminer/work/failover"
	"clminer/work/gbt"
	"clminer/work/source"
)

// Solo mining: an -o http://host:port entry is a node, mined with
// getblocktemplate; it can stand anywhere in the failover list.

func soloFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "coinbase-addr", Usage: "solo mining: address the block reward pays (base58, bech32 or bech32m/Taproot, of the node's network)", EnvVars: []string{"CLMINER_COINBASE_ADDR"}},
		&cli.StringFlag{Name: "rpc-cookie", Usage: "solo mining: the node's .cookie file, for RPC credentials instead of -u/-p", EnvVars: []string{"CLMINER_RPC_COOKIE"}},
	}
}

// nodeOpts is what a node entry adds to a pool entry.
type nodeOpts struct {
	address string
	cookie  string
}

// nodeSettings returns the node options of every node URL in pools, by
// position, from the flags and each file entry's coinbase-addr/rpc-cookie,
// and checks them: every error is one line, before any device opens.
func nodeSettings(c *cli.Context, fc *fileConfig, fromFile bool, pools []stratum.PoolConfig, ups []upstream) (map[int]nodeOpts, error) {
	nodes := map[int]nodeOpts{}
	for i, p := range pools {
		if ups[i].kind != kindNode {
			continue
		}
		o := nodeOpts{address: c.String("coinbase-addr"), cookie: c.String("rpc-cookie")}
		if fromFile {
			if fp := fc.Pools[i]; fp.CoinbaseAddr != nil {
				o.address = *fp.CoinbaseAddr
			}
			if fp := fc.Pools[i]; fp.RPCCookie != nil {
				o.cookie = *fp.RPCCookie
			}
		}
		name := fmt.Sprintf("pool %d (node %s)", i+1, ups[i])
		if err := gbt.CheckAddress(strings.TrimSpace(o.address)); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		o.address = strings.TrimSpace(o.address)
		if o.cookie != "" {
			if _, err := os.ReadFile(o.cookie); err != nil {
				return nil, fmt.Errorf("%s: --rpc-cookie: %v (the node writes it at start; point at its datadir's .cookie)", name, err)
			}
		}
		if o.cookie == "" && p.User == "" {
			return nil, fmt.Errorf("%s: give the node's RPC user and password with -u/-p, or --rpc-cookie PATH", name)
		}
		nodes[i] = o
	}
	if len(nodes) == 0 {
		for _, f := range []string{"coinbase-addr", "rpc-cookie"} {
			if c.String(f) != "" {
				return nil, fmt.Errorf("--%s is for solo mining: give a node URL (-o http://127.0.0.1:8332) with it, or drop it", f)
			}
		}
	}
	return nodes, nil
}

// upstreamDialer is the pool's SOCKS5 dialer, or nil for a direct
// connection: nodes and V2 pools go through --proxy as Stratum pools do.
func upstreamDialer(p stratum.PoolConfig) (stratum.Dialer, error) {
	if p.Proxy == "" {
		return nil, nil
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return stratum.ViaProxy(d.DialContext, p.Proxy)
}

// sourceSpec is what building the work source of an upstream list needs.
type sourceSpec struct {
	pools []stratum.PoolConfig
	ups   []upstream       // pools[i]'s URL, parsed
	nodes map[int]nodeOpts // the entries that are nodes
	log   *log.Logger
	copts stratum.Options // the Stratum v1 clients'
	// hashRate feeds V2 channels' UpdateChannel (nil: nominal).
	hashRate func() float64
	// proxy: the source feeds the farm proxy, which splits each job's
	// extranonce among its miners: V2 channels are extended, and nodes
	// roll an extranonce wide enough to split.
	proxy bool
	// inFlight bounds the shares each V2 channel lets await a verdict
	// (0: the channel's default).
	inFlight int
}

// proxyNodeExtranonce2 is the extranonce a node's coinbase gives the
// proxy: 2 bytes of miner prefix and 6 for each miner.
const proxyNodeExtranonce2 = 8

// buildSource makes the work source for a mining run's upstream list;
// hashRate is the rate V2 channels report to their pool.
func buildSource(setup *runSetup, copts stratum.Options, hashRate func() float64) (source.Source, error) {
	return buildSources(sourceSpec{pools: setup.pools, ups: setup.ups, nodes: setup.nodes, log: setup.log, copts: copts, hashRate: hashRate})
}

// buildSources makes the work source for the whole upstream list: runs of
// Stratum pools share one client (its own failover, health and backoff), each
// node and each Stratum V2 pool is a source of its own, and a mixed list is
// chained in order.
func buildSources(sp sourceSpec) (source.Source, error) {
	var srcs []source.Source
	var run []stratum.PoolConfig
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		copts := sp.copts
		copts.UserAgent = userAgent()
		cl, err := stratum.NewClient(run, copts)
		if err != nil {
			return err
		}
		srcs = append(srcs, cl)
		run = nil
		return nil
	}
	for i, p := range sp.pools {
		if sp.ups[i].kind == kindV2 {
			if err := flush(); err != nil {
				return nil, err
			}
			s, err := newV2Source(sp, p, i)
			if err != nil {
				return nil, err
			}
			srcs = append(srcs, s)
			continue
		}
		o, isNode := sp.nodes[i]
		if !isNode {
			run = append(run, p)
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		opt := gbt.Options{Logger: sp.log}
		if sp.proxy {
			opt.Extranonce2Size = proxyNodeExtranonce2
		}
		dial, err := upstreamDialer(p)
		if err != nil {
			return nil, fmt.Errorf("pool %d: %w", i+1, err)
		}
		if dial != nil {
			opt.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4}}
		}
		s, err := gbt.New(gbt.Config{
			Endpoint:       gbt.Endpoint{URL: p.URL, User: p.User, Pass: p.Pass, Cookie: o.cookie},
			Address:        o.address,
			VersionRolling: p.VersionRolling,
		}, opt)
		if err != nil {
			return nil, fmt.Errorf("pool %d: %w", i+1, err)
		}
		srcs = append(srcs, s)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(srcs) == 1 {
		return srcs[0], nil
	}
	return failover.New(srcs...), nil
}
