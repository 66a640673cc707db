//go:build !amd64 || purego

package cpu

func archPaths() []path { return nil }

func modelName() string { return "CPU" }
