//go:build race

package transforms

// raceEnabled: allocation counts mean little under the race detector.
const raceEnabled = true
