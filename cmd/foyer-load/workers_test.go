package main

import (
	"slices"
	"testing"
)

func TestWorkerEnv(t *testing.T) {
	base := []string{"PATH=/bin", "HOME=/root"}
	for _, tc := range []struct {
		name    string
		environ []string
		n, cpus int
		want    []string
	}{
		{"share of 2 cores over 3", base, 3, 2, []string{"PATH=/bin", "HOME=/root", workerIDEnv + "=1", "GOMAXPROCS=1"}},
		{"share of 16 cores over 3", base, 3, 16, []string{"PATH=/bin", "HOME=/root", workerIDEnv + "=1", "GOMAXPROCS=5"}},
		{"one worker", base, 1, 4, []string{"PATH=/bin", "HOME=/root", workerIDEnv + "=1", "GOMAXPROCS=4"}},
		{"the user's own", []string{"GOMAXPROCS=3", "PATH=/bin"}, 3, 2, []string{"GOMAXPROCS=3", "PATH=/bin", workerIDEnv + "=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.environ)
			if got := workerEnv(tc.environ, 1, tc.n, tc.cpus); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if !slices.Equal(tc.environ, before) {
				t.Fatalf("the process's environment changed: %q", tc.environ)
			}
		})
	}
}
