// Package bench holds tqflow's end-to-end benchmarks: run them with make
// bench (go test -bench . -benchtime 1x).
package bench
