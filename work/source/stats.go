package source

import (
	"fmt"
	"time"
)

// PoolStats is an upstream's state as the APIs show it (the miner's, which
// adds its own share accounting, and the farm proxy's): UpstreamStatus in
// JSON, its state and mask in words, its template's age in seconds.
type PoolStats struct {
	Index       int     `json:"index"`
	URL         string  `json:"url"`
	State       string  `json:"state"`
	Connects    uint64  `json:"connects"`
	Failovers   uint64  `json:"failovers"`
	LastError   string  `json:"last_error,omitempty"`
	Difficulty  float64 `json:"difficulty"`
	RollingMask string  `json:"version_rolling_mask,omitempty"`
	Extranonce1 string  `json:"extranonce1,omitempty"`
	Accepted    uint64  `json:"accepted"`
	Rejected    uint64  `json:"rejected"`
	// SickReason says why the pool was left for its behaviour (state sick).
	SickReason string `json:"sick_reason,omitempty"`
	InFlight   int    `json:"shares_in_flight"`
	Throttled  uint64 `json:"throttled"`
	// Protocol: stratum, stratum2 (V2), or getblocktemplate for a node
	// mined solo.
	Protocol string `json:"protocol"`
	// Channel is a V2 pool's channel kind and id.
	Channel string     `json:"channel,omitempty"`
	Node    *NodeStats `json:"node,omitempty"`
	// Workers are the per-device (sub-)workers on the live pool.
	Workers []WorkerStatus `json:"workers,omitempty"`
}

// NodeStats is a solo node's state as the APIs show it: its chain, the
// template, the blocks.
type NodeStats struct {
	Chain             string            `json:"chain"`
	Height            int64             `json:"height"`
	TemplateAgeS      float64           `json:"template_age_s"`
	Transactions      int               `json:"transactions"`
	NetworkDifficulty float64           `json:"network_difficulty"`
	BlocksSubmitted   uint64            `json:"blocks_submitted"`
	BlocksAccepted    uint64            `json:"blocks_accepted"`
	BlocksRejected    uint64            `json:"blocks_rejected"`
	RejectReasons     map[string]uint64 `json:"block_reject_reasons,omitempty"`
	LastBlock         string            `json:"last_block,omitempty"`
	// ExpectedBlockS is the mean time to a block at the 60 s hashrate and
	// the network difficulty (difficulty x 2^32 / hashrate), which the
	// miner fills in; 0 while the rate is unknown.
	ExpectedBlockS float64 `json:"expected_block_s"`
}

// NewPoolStats is an upstream's status as the API shows it (also the farm
// proxy's).
func NewPoolStats(p UpstreamStatus) PoolStats {
	ps := PoolStats{Index: p.Index, URL: p.URL, State: p.State.String(), Connects: p.Connects, Failovers: p.Failovers,
		LastError: p.LastError, Difficulty: p.Difficulty, Extranonce1: p.Extranonce1, Accepted: p.Accepted, Rejected: p.Rejected,
		SickReason: p.SickReason, InFlight: p.InFlight, Throttled: p.Throttled, Workers: p.Workers, Protocol: p.Protocol, Channel: p.Channel}
	if n := p.Node; n != nil {
		ps.Node = &NodeStats{Chain: n.Chain, Height: n.Height, Transactions: n.Transactions, NetworkDifficulty: n.NetworkDifficulty,
			BlocksSubmitted: n.BlocksSubmitted, BlocksAccepted: n.BlocksAccepted, BlocksRejected: n.BlocksRejected,
			RejectReasons: n.RejectReasons, LastBlock: n.LastBlock}
		if !n.TemplateTime.IsZero() {
			ps.Node.TemplateAgeS = time.Since(n.TemplateTime).Seconds()
		}
	}
	if p.RollingMask != 0 {
		ps.RollingMask = fmt.Sprintf("%08x", p.RollingMask)
	}
	return ps
}
