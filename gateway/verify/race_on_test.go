//go:build race

package verify

// raceEnabled: under the race detector sync.Pool drops items at random
// and the detector allocates on its own, so allocation counts are only
// asserted without it.
const raceEnabled = true
