// Package testkit holds what the tests of every package share, so that
// there is one policy for how long a test waits for an event instead of a
// copy (and a timeout) per package. It depends on the standard library
// alone, so the tests of any layer may import it.
package testkit
