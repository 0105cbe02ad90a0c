// Package fetch is the fetcher's logic: read the indicators a job instance
// has not seen yet, publish them with deterministic IDs, and move the
// instance's checkpoint only once the stream has stored every one; and run
// each job on its schedule while holding the job instance's lease
// ([Schedule]), so that one fetcher per instance is active.
package fetch
