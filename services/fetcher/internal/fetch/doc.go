// Package fetch is the fetcher's logic: read the indicators a job instance
// has not seen yet, publish them with deterministic IDs, and move the
// instance's checkpoint only once the stream has stored every one.
package fetch
