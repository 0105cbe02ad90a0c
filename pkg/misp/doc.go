// Package misp is tqflow's client for the MISP REST API, with what an
// exporter needs around it: the ThreatQ → MISP type mapping ([MapType]), the
// value normalisation MISP applies before its uniqueness checks
// ([Normalize]), and deterministic event and attribute UUIDs ([EventUUID],
// [AttributeUUID]) that make every write idempotent.
//
// The behaviour follows shared/contracts/misp.md (MISP 2.5.1). The quirks it
// absorbs:
//
//   - ids and counters arrive as JSON strings or numbers ([NumStr], [Count]);
//   - POST /events/add with a UUID that exists answers 302 + Location (or a
//     404 saying "Event already exists"): [Client.AddEvent] treats it as
//     success and returns the existing event;
//   - POST /attributes/add answers one saved attribute as an object and
//     several as an array, reports per-item failures under "errors"
//     (attribute_N keys, or bare field keys when one was sent), and uses 403
//     for validation failures as well as for a wrong key; [Client.AddAttributes]
//     sorts every submitted attribute into saved, already there, or rejected;
//   - 5xx answers may carry HTML or nothing at all.
//
// Errors are classified for pkg/bus: a wrong key wraps [ErrAuth], a missing
// permission [ErrForbidden], a validation failure [ErrValidation]; every
// answer with an error status also wraps an [*httpx.StatusError], whose
// Transient method says whether a retry may help (5xx, 429, timeouts).
package misp
