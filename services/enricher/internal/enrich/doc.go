// Package enrich is the enricher's logic: take indicators in batches, ask
// CTR about the ones of a type it supports (one call per batch, results
// cached), and publish one write per indicator CTR has context for. An
// indicator without context is acknowledged and nothing is written.
package enrich
