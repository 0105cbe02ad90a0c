// Package mispsim simulates the MISP REST API endpoints tqflow's exporter
// uses, with the quirks of shared/contracts/misp.md (MISP 2.5.1):
//
//   - the key is read raw from Authorization (or X-MISP-AUTH), must be 40
//     letters and digits and be one of Options.Keys; a refused key gets the
//     403 exception body {"name","message","url"}; without Accept:
//     application/json a request is not REST (see [Server.Handler]);
//   - POST /events/add[/metadata:1] creates an event; a UUID already used
//     answers 404 + Location + the JSON "Event already exists" body (or
//     302, Options.DuplicateEventStatus), whoever owns the event; a
//     blocklisted one (a deleted event's) 403, as MISP before 2.4.150 with
//     empty errors under Options.OldBlocklist; Options.OrgBlocklisted
//     answers "Event blocked by organisation blocklist.";
//   - POST /attributes/add/{id|uuid} saves attributes one by one, without a
//     transaction; one saved attribute is answered as an object, several as
//     an array, per-item failures under "errors" (attribute_N keys, or bare
//     fields when one attribute was sent), and nothing saved as a 403
//     saved:false; an attribute is a duplicate when its event already holds
//     the same (type, category, value) after MISP's normalisation, the
//     value compared as MySQL's utf8mb3_unicode_ci does (case, accents and
//     width ignored); the normalisation is the simulator's own, written
//     from MISP's PHP (values.go), never pkg/misp's; attribute UUIDs are
//     unique instance-wide; an event of another organisation
//     ([Server.AddForeignEvent]) refuses attributes with 403;
//   - HEAD and GET /events/view/{id|uuid}, POST /events/restSearch, POST
//     /events/publish/{id|uuid}, GET /attributes/describeTypes.json, GET
//     /servers/getVersion, GET /users/view/me; restSearch refuses (501) a
//     filter it does not implement; any other route answers MISP's JSON 404;
//   - Options.MaxPayloadBytes answers 413 as nginx does, Options.TimeoutAfter
//     saves part of a large batch then answers 504 (a proxy timeout) and,
//     with Options.KeepSaving, goes on saving the rest in the background
//     as PHP does, a resend racing it ending in a 500 from the uuid unique
//     key; Options.AttributeLimit makes viewing a large event
//     fail with a PHP memory error, and Options.HTMLErrors gives the 5xx
//     answers injected by [sim.Injector] an HTML body.
//
// The ledger (System "misp") records "event.create" (Object "event/<uuid>",
// Value the info), "attribute.add" (Object "event/<uuid>", Name the type,
// Value the stored value) and "event.publish": effective changes only, so a
// refused duplicate leaves no entry.
package mispsim
