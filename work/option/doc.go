// Package option is the one rule by which an Options struct fills what its
// caller left unset: a zero (or negative) timeout, interval, bound or count
// takes the default written in brackets beside the field. Each package
// kept its own closure for it; one function keeps "what counts as unset"
// the same everywhere, and a negative duration cannot mean "no timeout" in
// one package and "the default" in the next.
//
// It imports nothing of clminer's, so every layer may use it.
package option
