//go:build amd64 && !purego

package cpu

func shaniTest(p *params, n uint32, out *[niStreams]uint32) { shaniScan(p, n, out) }
