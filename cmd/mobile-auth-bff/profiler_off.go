//go:build !pprof

package main

import "log/slog"

// startProfiler does nothing: only a binary built with `-tags pprof` has a
// profiler (profiler.go).
func startProfiler(func(string) string, *slog.Logger) {}
