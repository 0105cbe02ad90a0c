// Package ctr is the client of Cisco Threat Response (SecureX threat
// response, Cisco XDR) enrichment, the IROH API described in
// shared/contracts/ctr.md, and the mapping of its CTIM answers onto
// ThreatQ attributes.
//
// # Client
//
// [New] builds a [Client] from a [Config]. The client mints an OAuth2
// client-credentials token (POST /iroh/oauth2/token, HTTP Basic and a form
// body), caches it for its expires_in (600 s) minus 60 s, shares one token
// request between concurrent callers and mints again once when an API call
// is answered 401. A 4xx from the token endpoint is [ErrCredentials],
// permanent, and is remembered for 30 s so that a wrong password does not
// cost one token request per message; a 429 or 5xx from it is transient
// (an outage is not a configuration error). The password never appears in
// errors.
//
// [Client.Observe] and [Client.Deliberate] send observables as a bare JSON
// array in one call (a chunk refused with 413 is halved), at most
// Config.BatchSize of them, and return the decoded [Response]. The caller
// chunks and de-duplicates: this package does neither, so that each rule
// has one home (the enricher). Use [TypeFor] to turn a ThreatQ indicator
// type into a CTR observable type; types CTR cannot enrich (CIDR Block,
// ASN, SHA-384, SHA-512, Fuzzy Hash, String, …) have none and are not
// sent. Config.Pace, when set, is asked before every enrich call: the
// org-wide request budget.
//
// Errors follow pkg/httpx: 429 is an [*httpx.StatusError] whose Retry is
// the Retry-After (up to about an hour); 5xx and transport failures are
// transient; 400, 403 (missing scope, see [*Error].MissingScopes) and
// repeated 401 are permanent [*Error] values; an undecodable answer is an
// [*httpx.DecodeError]. Per-module errors inside a 200 are not errors:
// they are in [Response].Errors for the caller to log.
//
// # Mapping
//
// ThreatQ keeps one row per (name, value), and several modules answer for
// one observable (ctr.md, corrections 6), so [Response.Results] gives each
// observable asked one [Result] per module with context, in the order of
// the answer. For each module:
//
//   - "CTR Module" is the module's name.
//   - Disposition comes from the module's unexpired verdict for the
//     observable (corrections 5: judgements can disagree with it); only a
//     module without one falls back to its judgement's disposition.
//   - The judgement read is the one the verdict's judgement_id names, else
//     the module's best unexpired judgement: highest priority, then the
//     disposition in the order Clean, Malicious, Suspicious, Common,
//     Unknown, then the latest valid_time.start_time, then the first. It
//     gives Confidence, Severity, Source, Priority (a decimal string) and
//     Reference (source_uri, else reason_uri, else the first
//     external_references url).
//   - Description is the judgement's reason, else the title of the CTIM
//     indicator the judgement is linked to by a relationship (Global
//     Threat Intelligence gives no reason, corrections 7), else the
//     description of a sighting of the observable from the same module.
//   - A module with sightings only (no verdict or judgement at all: the
//     organisation's own environment) is context too: its sightings give
//     Description, Source and Reference. A module whose verdicts and
//     judgements all expired gives nothing, whatever its sightings.
//   - Origin is not a CTIM judgement field; this package decides it: the
//     origin of the first sighting relation from the same module (relay
//     modules put e.g. "AbuseIPDB Enrichment Module" there), else
//     [DefaultOrigin], "Cisco Threat Response", the system the context
//     came through. A module that gave a verdict and no usable judgement
//     gives CTR Module and Disposition only, as deliberate answers do.
//
// A module with no unexpired verdict, judgement or sighting for the
// observable gives no result; an observable no module gives a result for
// has no context. A verdict of Unknown is context. The disposition name
// is always derived from the number (1 Clean, 2 Malicious, 3 Suspicious,
// 4 Common, 5 Unknown); disposition_name is optional in CTIM and never
// read. Attributes with an empty value are left out.
//
// Documents are attributed to observables by doc.observable (verdicts,
// judgements) and doc.observables[] (sightings), comparing types without
// case and values without case for hashes, domains, hostnames, e-mail,
// IPv6 and MAC addresses, which are also sent lower-cased. Other values
// are matched exactly: two URLs that differ in case are two observables.
package ctr
