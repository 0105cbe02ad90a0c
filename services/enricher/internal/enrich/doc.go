// Package enrich is the enricher's logic: take indicators in batches, ask
// CTR about the ones of a type it supports, and publish one write per
// indicator CTR has context for, with every module's rows (one per name
// and value). An indicator without context is acknowledged and nothing is
// written.
//
// The enricher is the one place observables are de-duplicated (exactly as
// sent: two URLs that differ in case are two) and chunked (a CTR call per
// chunk of the client's batch size). Answers are cached per CTR host and
// API client (a [Cache] scope), and only complete ones: an observable a
// module failed on (a per-module error inside a 200) is asked again on its
// next deliveries and, if modules keep failing, settled with what the
// others said, uncached, for a later run to ask again.
//
// A CTR that refuses every call (Enricher.Fatal: a missing scope,
// credentials refused) pauses consumption: every message of the batch gets
// a bus.Pause error, which the runner holds in process without spending a
// delivery or dead-lettering anything; calls then go one at a time, one per
// RefusedRetry, and the first answer resumes everything. Only an answer
// that blames observables (Enricher.Blames: a 400 or 413) is split to find
// them.
package enrich
