package main

import (
	"math"
	"slices"
	"time"
)

// latency summarises a set of durations, in milliseconds.
type latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// summarise computes the nearest-rank percentiles of ns (nanoseconds).
func summarise(ns []int64) latency {
	if len(ns) == 0 {
		return latency{}
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	return latency{
		N:    len(s),
		P50:  ms(percentile(s, 0.50)),
		P99:  ms(percentile(s, 0.99)),
		P999: ms(percentile(s, 0.999)),
		Max:  ms(s[len(s)-1]),
		Mean: ms(int64(sum / float64(len(s)))),
	}
}

// percentile is the nearest-rank percentile of sorted: the smallest value
// with at least p of the values at or below it.
func percentile(sorted []int64, p float64) int64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(ns int64) float64 {
	return math.Round(float64(ns)/float64(time.Millisecond)*1000) / 1000 // µs resolution
}

// mergeCounts adds src's counts into dst.
func mergeCounts(dst, src map[string]int) {
	for k, v := range src {
		dst[k] += v
	}
}
