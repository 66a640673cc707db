package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// The model: every instruction the generator emits is counted, per kernel
// and per execution-port class, with loop bodies multiplied by their trip
// counts, so that `go run ./internal/gen -model` prints what a call of each
// kernel executes and the bound that puts on a core (BENCHMARKS.md quotes
// it). The classes are what decides the bound on the cores measured:
//
//   - alu: vector add and logic (VPADDD, VPTERNLOGD, PXOR...): any vector
//     ALU port (Intel since Ice Lake: p0 and p5 for 512 bits, p0, p1 and p5
//     for 256 bits and less).
//   - shift: vector shifts and rotates: Intel runs 512-bit ones on p0 alone,
//     narrower ones on p0 and p1.
//   - shuf: shuffles, inserts and extracts, register broadcasts: p5 (and p1
//     for 128/256 bits on recent Intel cores).
//   - rnds2, msg1, msg2: the SHA extensions. On the Intel core measured
//     (BENCHMARKS.md) they share one unit, which takes a new SHA256RNDS2
//     every 3 cycles (its latency is 4) and is held about 0.6 cycles by a
//     SHA256MSG1 and 0.75 by a SHA256MSG2 (fitted to the kernels with each
//     kind replaced by an ALU instruction).
//   - mov: register copies, which the renamer eliminates (no port).
//   - load, store: memory; a load folded into an ALU instruction counts
//     there and as a load.
//   - int: general-purpose register work (loop counters, pointers, masks).
type kstats struct {
	name   string
	hashes int // hashes one call does
	n      map[string]int
}

var (
	stats []*kstats
	cur   *kstats
	// mult is the trip count of the loop whose body is being emitted.
	mult = 1
)

// text starts kernel name: its TEXT line, and its counts.
func text(name string, frame, args, hashes int) {
	fmt.Fprintf(&buf, "TEXT ·%s(SB), $%d-%d\n", name, frame, args)
	cur = &kstats{name: name, hashes: hashes, n: map[string]int{}}
	stats = append(stats, cur)
}

// count classifies one emitted instruction.
func count(ins string) {
	if cur == nil {
		return
	}
	f := strings.Fields(strings.ReplaceAll(ins, ",", " "))
	if len(f) == 0 {
		return
	}
	op := strings.TrimSuffix(f[0], ".BCST")
	args := f[1:]
	memArg := false
	for _, a := range args {
		if strings.Contains(a, "(") {
			memArg = true
		}
	}
	isVec := func(a string) bool {
		return len(a) > 1 && (a[0] == 'X' || a[0] == 'Y' || a[0] == 'Z') && a[1] >= '0' && a[1] <= '9'
	}
	class := ""
	switch {
	case op == "SHA256RNDS2":
		class = "rnds2"
	case op == "SHA256MSG1":
		class = "msg1"
	case op == "SHA256MSG2":
		class = "msg2"
	case op == "VPRORD" || op == "VPROLD" || op == "VPSRLD" || op == "VPSLLD" || op == "PSRLL" || op == "PSLLL" || op == "PSRLDQ" || op == "PSLLDQ" || op == "VPSRLDQ" || op == "VPSLLDQ":
		class = "shift"
	case op == "VPSHUFB" || op == "PSHUFB" || op == "PSHUFD" || op == "VPSHUFD" || op == "PALIGNR" || op == "VPALIGNR" || op == "PBLENDW" || op == "VPBLENDD" ||
		op == "PINSRD" || op == "PEXTRD" || op == "VPEXTRD" || op == "VPINSRD" || op == "VMOVD" || op == "MOVD" || op == "VPUNPCKLQDQ" || op == "PUNPCKLQDQ" || op == "PUNPCKHQDQ" || op == "VMOVMSKPS":
		class = "shuf"
	case op == "VPBROADCASTD" || op == "VMOVDQU32" || op == "VMOVDQA32" || op == "VMOVDQU" || op == "VMOVDQA" || op == "MOVOU" || op == "MOVO" || op == "MOVOA":
		switch {
		case len(args) == 2 && strings.Contains(args[0], "("):
			class = "load"
			memArg = false
		case len(args) == 2 && strings.Contains(args[1], "("):
			class = "store"
			memArg = false
		case op == "VPBROADCASTD" && !isVec(args[0]):
			class = "shuf" // from a general register: a port-5 uop
		default:
			class = "mov"
		}
	case strings.HasPrefix(op, "VP") || strings.HasPrefix(op, "P"):
		class = "alu"
	case op == "KMOVW" || op == "VZEROUPPER" || op == "RET":
		class = "int"
	default:
		class = "int"
	}
	cur.n[class] += mult
	if memArg && class != "load" && class != "store" && class != "int" {
		cur.n["load"] += mult
	}
}

// portBound returns cycles per call for a core whose vector instructions
// are spread over ports vector ports, of which shiftPorts run shifts and
// rotates and shufPorts shuffles.
func (k *kstats) portBound(ports, shiftPorts, shufPorts float64) float64 {
	alu, sh, sf := float64(k.n["alu"]), float64(k.n["shift"]), float64(k.n["shuf"])
	b := (alu + sh + sf) / ports
	b = max(b, sh/shiftPorts, sf/shufPorts)
	return b
}

func writeModel(w io.Writer) {
	fmt.Fprintf(w, "Instructions per call, per class (loops multiplied out); see model.go.\n\n")
	classes := []string{"alu", "shift", "shuf", "rnds2", "msg1", "msg2", "mov", "load", "store", "int"}
	fmt.Fprintf(w, "| kernel | hashes/call | %s | vector ops/hash |\n", strings.Join(classes, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(classes)+3))
	ks := append([]*kstats(nil), stats...)
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].name < ks[j].name })
	for _, k := range ks {
		var cells []string
		for _, c := range classes {
			cells = append(cells, fmt.Sprint(k.n[c]))
		}
		vec := k.n["alu"] + k.n["shift"] + k.n["shuf"] + k.n["rnds2"] + k.n["msg1"] + k.n["msg2"]
		fmt.Fprintf(w, "| %s | %d | %s | %.1f |\n", k.name, k.hashes, strings.Join(cells, " | "), float64(vec)/float64(k.hashes))
	}
	fmt.Fprintf(w, "\nBounds, cycles per hash:\n\n")
	fmt.Fprintf(w, "| kernel | 512-bit, 2 ports (shifts on 1) | 512-bit, 4 ports (shifts on 2) | 256/128-bit, 3 ports (shifts on 2) | SHA unit: RNDS2 3 cycles, MSG1 0.6, MSG2 0.75 |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|\n")
	for _, k := range ks {
		h := float64(k.hashes)
		sha := (3*float64(k.n["rnds2"]) + 0.6*float64(k.n["msg1"]) + 0.75*float64(k.n["msg2"])) / h
		shaCell := "-"
		if k.n["rnds2"] > 0 {
			shaCell = fmt.Sprintf("%.1f", max(sha, k.portBound(3, 2, 2)/h))
		}
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.1f | %s |\n", k.name, k.portBound(2, 1, 1)/h, k.portBound(4, 2, 2)/h, k.portBound(3, 2, 2)/h, shaCell)
	}
}
