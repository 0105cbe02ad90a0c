// Package tqsim simulates a ThreatQ instance's REST API, quirks included,
// as shared/contracts/threatq.md describes it: the token endpoint with its
// three password encodings and client credentials, instance-specific type
// and status ids, saved searches whose json is sometimes a string, the
// structured indicator query with offset paging and "data": {} for an empty
// page, the consume (upsert) endpoints, attribute rows unique per (name,
// value), and validation errors in the API's own shape. It is as awkward
// as the contract's second audit found ThreatQ (its "Corrections and
// additions"): consume sets the status of new indicators and signatures
// only (an existing one's is set with PUT /api/indicators/{id} or
// /api/signatures/{id}); each attribute row carries its own list of
// sources, a second source reporting the same row joining it, shown only
// with with=sources; and status names match only as spelt.
//
// It keeps a ledger (pkg/sim) of every effective change: "indicator.create",
// "attribute.add", "attribute.source.add" (a source joined an existing
// row), "attribute.delete" (with the row's sources in Entry.Sources: whose
// row it was), "status.set", "signature.create", "signature.update" and
// "signature.status.set". A redelivered write changes nothing and records
// nothing.
//
// It is built for volume: [Generate] makes realistic datasets of millions
// of indicators, [Server.Load] loads them in seconds, and a query costs one
// filtering pass for its first page and O(page) for the following ones.
package tqsim
