//go:build race

package gateway

// raceEnabled: the race detector allocates on its own and sync.Pool drops
// items at random under it, so allocation counts are checked without it.
const raceEnabled = true
