// Package ctrsim simulates the Cisco Threat Response (IROH) token and
// enrich routes as described in shared/contracts/ctr.md, for tests, the
// pipeline benchmark and the local sandbox.
//
// Routes:
//
//	POST /iroh/oauth2/token                       Basic auth + form grant_type=client_credentials
//	POST /iroh/iroh-enrich/observe/observables    verdicts, judgements, sightings
//	POST /iroh/iroh-enrich/deliberate/observables verdicts only
//	GET  /iroh/iroh-enrich/settings               token check
//
// Like the real service it answers a bad client id or password with 401
// {"error":"invalid_client",…}, a missing, unknown or expired token with a
// 401 NormalizedError, a request over the org's rate limit (8000 per
// rolling hour by default) with 429 and Retry-After in seconds until the
// window frees, and every answer with X-Ratelimit-Org-Limit. An enrich body
// must be a bare JSON array of objects with exactly the string keys type
// and value, the type one of the 63 of the enum; any bad item refuses the
// whole batch with 400 {"errors":{"<index>":{…}}}. Options.MaxObservables
// adds a payload limit answered 413.
//
// Tests fill the knowledge base with [Server.AddContext], or with
// [GenerateContext] for generated datasets. Answers carry the quirks of
// the real envelope: the documents of all observables mixed in each
// module's collections, every enabled module present (those with nothing
// answer {} or {"verdicts":{"count":0,"docs":[]}}), counts written as
// floats by some modules, judgement_id and disposition_name sometimes
// missing, timestamps in milliseconds, seconds or microseconds depending on
// the module, modules silently ignoring types they do not handle, values
// echoed as stored (possibly in another case than asked) and, with
// Options.ModuleErrorRate, per-module errors inside a 200.
//
// Conditions the real CTR produces every day can be switched on at run
// time: [Server.SetRefusal] (403 missing_scope on every enrich call, or a
// revoked API client), [Server.SetModuleErrorRate] (per-module "too many
// requests" and "request timeout" errors inside a 200) and
// [Server.SetRetryAfter] (the org limit's 429 with Retry-After in seconds,
// as "3172s", or without it). Contexts may make a module's verdict and
// judgement disagree, give sightings only, or link a judgement to a CTIM
// indicator as Global Threat Intelligence does. [Server.Attributes] is the
// tests' oracle: the rows the contract's mapping gives for what the
// knowledge base holds. [Server.Requests] logs when each API request came,
// so a test can prove a client's pacing ([MaxInWindow]).
//
// CTR is read-only, so the ledger stays empty. Stats counts requests per
// route (the Route constants) and [Server.ObservablesReceived] counts the
// observables received, also served at GET /_sim/ctr.
package ctrsim
