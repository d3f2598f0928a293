//go:build race

package signaling

// raceEnabled: the race detector is on, which makes allocations of its own.
const raceEnabled = true
