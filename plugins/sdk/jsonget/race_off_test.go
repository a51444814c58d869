//go:build !race

package jsonget

const raceEnabled = false
