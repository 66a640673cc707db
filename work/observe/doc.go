// Package observe exports the miner's state to the systems that watch headless
// rigs: Prometheus metrics, a JSON status document, a health check for load
// balancers and supervisors, and an append-only JSON share log. It reads the
// miner's accounting rather than keeping its own, so every view agrees.
package observe
