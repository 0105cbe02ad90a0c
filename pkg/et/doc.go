// Package et downloads the Proofpoint Emerging Threats (ET) rulesets (ET
// Open, ET Open without GPL rules, ET Pro and the block rules) and tells
// whether they changed since the last download, as described in
// shared/contracts/et.md.
//
// Change detection follows suricata-update and pulledpork: [Client.Check]
// fetches the small .md5 file ET publishes next to every tarball and
// compares it with the md5 kept in [State]; where there is no .md5 it
// compares version.txt, and for the block rules (plain files) it makes a
// conditional GET. [Client.Download] streams the artefact to a writer,
// hashes it on the way and refuses it when its md5 is not the published one.
//
// Flavours are asked for as the engine's own tool asks for them (see
// [RequestFlavor]): a Suricata version in full, as suricata-update sends
// it, which ET maps onto its fork; a Snort version without its fourth
// component, as pulledpork sends it. The default is [DefaultFlavor].
//
// ET's IP lists (fwrules/emerging-Block-IPs.txt,
// blockrules/compromised-ips.txt) are fetched like the block rules, as
// "list:" sources ([Client.Lists]), and read with [ParseIPList]; a list
// where rules are expected, or rules where a list is, is refused by
// [Config.Validate].
//
// The ET Pro oinkcode is a secret that sits in the URL path. It never
// appears in an error, a returned value or a String method of this package:
// URLs shown anywhere use "<oinkcode>" in its place, and errors from
// net/http, whose *url.Error carries the full URL, are unwrapped and
// scrubbed before they are returned.
//
// Errors carry a Transient method (see pkg/httpx): a 5xx, a timeout, a
// dropped connection or a truncated body is transient; a rejected
// oinkcode, an unknown flavour, an md5 mismatch or an oversized artefact is
// permanent. Callers test them with errors.Is against [ErrOinkcodeRejected],
// [ErrUnknownFlavour], [ErrNotFound], [ErrMD5Mismatch], [ErrTruncated] and
// [ErrTooLarge].
package et
