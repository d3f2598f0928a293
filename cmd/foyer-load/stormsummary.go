package main

// stormSummary merges the workers' storm results. Cycles per second are
// the completed cycles over the span from the first call placed to the last
// cycle finished, across all workers (wall clock, one machine).
func stormSummary(o *options, replies []reply) *stormReport {
	s := &stormReport{Rate: o.rate, Answer: o.answer, Errors: map[string]int{}}
	var ring, cancel, cycle, lag []int64
	var first, last int64
	for _, r := range replies {
		sr := r.Storm
		s.Planned += sr.Planned
		s.Placed += sr.Placed
		s.Completed += sr.Completed
		s.Skipped += sr.Skipped
		s.CallTaken += sr.CallTaken
		mergeCounts(s.Errors, sr.Errors)
		ring = append(ring, sr.RingNS...)
		cancel = append(cancel, sr.CancelNS...)
		cycle = append(cycle, sr.CycleNS...)
		lag = append(lag, sr.LagNS...)
		if sr.FirstCallUnix != 0 && (first == 0 || sr.FirstCallUnix < first) {
			first = sr.FirstCallUnix
		}
		last = max(last, sr.LastDoneUnixNS)
	}
	if first != 0 && last > first {
		s.Seconds = float64(last-first) / 1e9
		s.CyclesPerSecond = float64(s.Completed) / s.Seconds
	}
	s.CallToLastRing = summarise(ring)
	s.AnswerToCancel = summarise(cancel)
	s.Cycle = summarise(cycle)
	s.ScheduleLag = summarise(lag)
	return s
}
