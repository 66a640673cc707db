package main

import "strings"

// suggest returns the option closest to word when it is a likely typo of
// it (one edit for short words, two from six letters on; a swap of two
// neighbouring letters counts as one edit), else "". It is the one "did you
// mean" policy: unknown commands and config keys use it.
func suggest(word string, options []string) string {
	word = strings.ToLower(word)
	limit := 1
	if len(word) >= 6 {
		limit = 2
	}
	best, bestD, bestP := "", limit+1, 0
	for _, o := range options {
		lo := strings.ToLower(o)
		d, p := editDistance(word, lo), commonPrefix(word, lo)
		if d > limit {
			continue
		}
		// On a tie, the option that shares the longer start: typos are
		// rarer in a word's first letters ("usr" is "user", not "url").
		if d < bestD || d == bestD && p > bestP {
			best, bestD, bestP = o, d, p
		}
	}
	return best
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and adjacent transpositions, one each.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
