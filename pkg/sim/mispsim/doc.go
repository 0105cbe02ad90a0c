// Package mispsim simulates the MISP REST API endpoints tqflow's exporter
// uses, with the quirks of shared/contracts/misp.md (MISP 2.5.1):
//
//   - the key is read raw from Authorization (or X-MISP-AUTH), must be 40
//     letters and digits and be one of Options.Keys; a refused key gets the
//     403 exception body {"name","message","url"}; without Accept:
//     application/json a request is not REST (see [Server.Handler]);
//   - POST /events/add[/metadata:1] creates an event; a UUID already used
//     answers 302 + Location (or 404, Options.DuplicateEventStatus) and a
//     blocklisted one (a deleted event's) 403;
//   - POST /attributes/add/{id|uuid} saves attributes one by one, without a
//     transaction; one saved attribute is answered as an object, several as
//     an array, per-item failures under "errors" (attribute_N keys, or bare
//     fields when one attribute was sent), and nothing saved as a 403
//     saved:false; an attribute is a duplicate when its event already holds
//     the same (type, category, value) after MISP's normalisation
//     ([misp.Normalize]), and attribute UUIDs are unique instance-wide;
//   - HEAD and GET /events/view/{id|uuid}, POST /events/restSearch, POST
//     /events/publish/{id|uuid}, GET /attributes/describeTypes.json, GET
//     /servers/getVersion;
//   - Options.MaxPayloadBytes answers 413 as nginx does, Options.TimeoutAfter
//     saves part of a large batch then answers 504 (a PHP
//     max_execution_time), Options.AttributeLimit makes viewing a large event
//     fail with a PHP memory error, and Options.HTMLErrors gives the 5xx
//     answers injected by [sim.Injector] an HTML body.
//
// The ledger (System "misp") records "event.create" (Object "event/<uuid>",
// Value the info), "attribute.add" (Object "event/<uuid>", Name the type,
// Value the stored value) and "event.publish": effective changes only, so a
// refused duplicate leaves no entry.
package mispsim
