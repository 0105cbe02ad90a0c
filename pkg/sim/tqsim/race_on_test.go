//go:build race

package tqsim_test

// raceEnabled is true under the race detector, which makes timings meaningless.
const raceEnabled = true
