// Package threatq is tqflow's client of the ThreatQ (ThreatQuotient) REST
// API, as described in shared/contracts/threatq.md.
//
// A [Client] mints and caches an OAuth token (password or client-credentials
// grant), re-authenticating once on a 401; runs a Threat Library saved search
// with an injected updated_at window, streaming the indicators page by page
// ([Client.Query]); resolves indicator and signature types and statuses by
// name at run time (their ids differ per instance; statuses exactly as
// spelt, as the vendor SDK resolves them, [Client.ResolveStatuses] at
// start-up); and writes back: bulk upserts through the consume endpoints
// (which set the status of new objects only), attribute rows read with
// their own sources, [StaleRows] deciding which of them a write replaces
// (only those listing our source alone), and indicator and signature
// statuses by PUT.
//
// Decoding is tolerant of the API's known quirks: "data" as an object, an
// array or null; scores as numbers, numeric strings or score objects; type
// and status as names or {id,name} objects; a saved search's json as an
// object or as a string holding JSON.
//
// Errors are those of pkg/httpx, so callers can tell transient failures
// from permanent ones with [httpx.IsTransient]: [*httpx.StatusError],
// [*httpx.DecodeError] and [*httpx.TransportError], plus
// [*ValidationError] for a 400 that names the fields at fault, so that a
// batch writer can bisect a refused batch. Error messages never carry
// credentials, tokens or request data.
package threatq
