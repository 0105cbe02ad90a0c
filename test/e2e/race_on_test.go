//go:build race

package e2e_test

// raceEnabled is true under the race detector. The volume tests skip
// there (it makes them several times slower and finds nothing a smaller
// test does not) and run in make test's second step, without it.
const raceEnabled = true
