// Package gputest provides devices for tests of the code that drives devices:
// a slow but exact reference device, and one that lies, so that tests can prove
// the host never submits what a broken GPU reports.
package gputest
