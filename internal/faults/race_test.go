//go:build race

package faults

// raceEnabled: the participant helper is built with the race detector too.
const raceEnabled = true
