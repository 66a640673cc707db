package main

import (
	"fmt"
	"sync/atomic"

	"clminer/stratum"
	"clminer/stratum/v2/channel"
	"clminer/work/miner"
	"clminer/work/source"
)

// Stratum V2: an -o stratum2+tcp://host:port/AUTHORITY_KEY entry is a V2
// pool, one source of its own, anywhere in the failover list.

// hashRateFeed gives V2 channels the miner's measured hashrate once the
// miner exists (the channel opens with a nominal one before that).
type hashRateFeed struct{ m atomic.Pointer[miner.Miner] }

func (f *hashRateFeed) rate() float64 {
	if m := f.m.Load(); m != nil {
		return m.Snapshot().Rate60s
	}
	return 0
}

// checkV2Pool is the config check of a V2 entry (its URL already parsed,
// name "pool N (URL)"): one line, before any device opens.
func checkV2Pool(name string, pc stratum.PoolConfig, insecure bool) error {
	if pc.Fingerprint != "" || insecure {
		return fmt.Errorf("%s: tls-fingerprint and tls-insecure are for stratum+tls:// pools; a V2 pool is authenticated by the key in its URL", name)
	}
	if pc.User == "" {
		return fmt.Errorf("%s: the user (worker name) is empty", name)
	}
	return nil
}

func newV2Source(sp sourceSpec, p stratum.PoolConfig, index int) (source.Source, error) {
	dial, err := upstreamDialer(p)
	if err != nil {
		return nil, fmt.Errorf("pool %d: %w", index+1, err)
	}
	s, err := channel.New(channel.Config{
		URL: p.URL, User: p.User, VersionRolling: p.VersionRolling, Index: index, HashRate: sp.hashRate, Extended: sp.proxy,
	}, channel.Options{Logger: sp.log, Dial: dial, MaxInFlight: sp.inFlight})
	if err != nil {
		return nil, fmt.Errorf("pool %d: %w", index+1, err)
	}
	return s, nil
}
