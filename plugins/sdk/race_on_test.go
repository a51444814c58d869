//go:build race

package sdk

// raceEnabled: allocation counts are meaningless under the race detector.
const raceEnabled = true
