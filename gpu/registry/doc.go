// Package registry knows every kind of device clminer can drive and turns the
// --device spec an operator types ("cpu", "opencl:0:1", "gpu", "all") into
// open devices. It is the one package that imports both backends, so neither
// backend nor the mining loop depends on the other.
package registry
