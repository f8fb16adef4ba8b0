//go:build race

package h1

// raceEnabled reports a -race build, whose instrumentation allocates.
const raceEnabled = true
