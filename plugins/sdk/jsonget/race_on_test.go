//go:build race

package jsonget

// raceEnabled: allocation counts are meaningless under the race detector.
const raceEnabled = true
