//go:build !race

package signaling

// raceEnabled: this build has no race detector.
const raceEnabled = false
