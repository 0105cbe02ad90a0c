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
// array, deduplicated and in chunks of Config.BatchSize, and return the
// decoded [Response]. Use [TypeFor] to turn a ThreatQ indicator type into
// a CTR observable type; types CTR cannot enrich (CIDR Block, ASN,
// SHA-384, SHA-512, Fuzzy Hash, String, …) have none and are not sent.
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
// ThreatQ keeps one value per attribute name, so [Response.Results] gives
// each observable asked at most one [Result], taken from one module:
//
//  1. Among the unexpired judgements of the observable from every module
//     (valid_time.end_time absent or later than now), the one with the
//     highest priority wins, the CTIM verdict rule; a tie goes to the
//     disposition in the order Clean, Malicious, Suspicious, Common,
//     Unknown, then to the latest valid_time.start_time, then to the
//     module and document that came first. Its module gives "CTR Module";
//     the judgement gives Disposition, Confidence, Severity, Description
//     (its reason, else the description of a sighting of the observable
//     from the same module), Source, Priority (a decimal string) and
//     Reference (source_uri, else reason_uri, else the first
//     external_references url).
//  2. With no usable judgement, the best unexpired verdict (same tie rule)
//     gives "CTR Module" and Disposition only, as deliberate answers do.
//  3. With neither, the observable has no result: CTR has no context and
//     the caller writes nothing. A verdict of Unknown is context.
//
// The disposition name is always derived from the number (1 Clean,
// 2 Malicious, 3 Suspicious, 4 Common, 5 Unknown); disposition_name is
// optional in CTIM and never read. Attributes with an empty value are
// left out.
//
// Origin is not a CTIM judgement field; this package decides it: the
// origin of the first sighting relation from the same module whose
// sighting names the observable (relay modules put e.g. "AbuseIPDB
// Enrichment Module" there), else [DefaultOrigin], "Cisco Threat
// Response", the system the context came through. Verdict-only results
// carry no Origin.
//
// Documents are attributed to observables by doc.observable (verdicts,
// judgements) and doc.observables[] (sightings), comparing types without
// case and values without case for hashes, domains, hostnames, e-mail,
// IPv6 and MAC addresses, which are also sent lower-cased.
package ctr
