//go:build race

package service_test

// raceEnabled is true under the race detector. The volume tests skip
// there (it makes them several times slower and finds nothing a smaller
// test does not) and run in make test's second step, without it.
const raceEnabled = true
