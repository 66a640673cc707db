// Package layers holds the module's dependency rule as a test over
// `go list` (layers_test.go): which package groups may import which. It is
// its own package, not a test of one of the layers, because the rule is
// about all of them; it has no code, so nothing imports it.
//
// The table is the one README's "Layers" section shows; change both
// together.
package layers
