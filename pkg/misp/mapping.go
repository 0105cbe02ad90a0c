package misp

import "strings"

// Mapping says how a ThreatQ indicator becomes a MISP attribute.
type Mapping struct {
	// Type is the MISP attribute type, e.g. "ip-dst".
	Type string
	// Category is the category to send, always one MISP allows for Type.
	Category string
	// ToIDs is MISP's default to_ids for Type; exporters may override it
	// from the indicator's score.
	ToIDs bool
	// Lossy is set for ThreatQ types MISP has no type for, sent as "text"
	// in "Other": exporters may skip them, and should name the ThreatQ
	// type in the comment.
	Lossy bool
}

type typeRow struct {
	threatq         string
	mispType        string
	category        string
	defaultCategory string
	defaultToIDs    bool
	validCategories []string
}

var (
	catsNet     = []string{"Payload delivery", "Network activity", "External analysis"}
	catsHash    = []string{"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"}
	catsHashSHA = []string{"Payload delivery", "Artifacts dropped", "Payload installation"}
	catsText    = []string{
		"Internal reference", "Antivirus detection", "Payload delivery", "Artifacts dropped",
		"Payload installation", "Persistence mechanism", "Network activity", "Payload type", "Attribution",
		"External analysis", "Financial fraud", "Support Tool", "Social network", "Person", "Other",
	}
)

// typeRows is misp.md §7 (and DERIVED_threatq_to_misp_type_map.json), with
// MISP 2.5.1 defaults and allowed categories from describeTypes.json.
var typeRows = []typeRow{
	{"IP Address", "ip-dst", "Network activity", "Network activity", true, catsNet},
	{"IPv6 Address", "ip-dst", "Network activity", "Network activity", true, catsNet},
	{"CIDR Block", "ip-dst", "Network activity", "Network activity", true, catsNet},
	{"FQDN", "domain", "Network activity", "Network activity", true, catsNet},
	{"URL", "url", "Network activity", "Network activity", true, catsNet},
	{"URL Path", "uri", "Network activity", "Network activity", true, []string{"Network activity"}},
	{"MD5", "md5", "Payload delivery", "Payload delivery", true, catsHash},
	{"SHA-1", "sha1", "Payload delivery", "Payload delivery", true, catsHash},
	{"SHA-256", "sha256", "Payload delivery", "Payload delivery", true, catsHash},
	{"SHA-384", "sha384", "Payload delivery", "Payload delivery", true, catsHashSHA},
	{"SHA-512", "sha512", "Payload delivery", "Payload delivery", true, catsHashSHA},
	{"Fuzzy Hash", "ssdeep", "Payload delivery", "Payload delivery", true, catsHashSHA},
	{"Email Address", "email-src", "Payload delivery", "Payload delivery", true,
		[]string{"Payload delivery", "Network activity", "Social network"}},
	{"Email Subject", "email-subject", "Payload delivery", "Payload delivery", false,
		[]string{"Payload delivery", "Network activity"}},
	{"Email Attachment", "email-attachment", "Payload delivery", "Payload delivery", true, []string{"Payload delivery"}},
	{"X-Mailer", "email-x-mailer", "Payload delivery", "Payload delivery", false, []string{"Payload delivery"}},
	{"Filename", "filename", "Payload delivery", "Payload delivery", true,
		[]string{"Payload delivery", "Artifacts dropped", "Payload installation", "Persistence mechanism", "External analysis"}},
	{"File Path", "filename", "Payload delivery", "Payload delivery", true,
		[]string{"Payload delivery", "Artifacts dropped", "Payload installation", "Persistence mechanism", "External analysis"}},
	{"Mutex", "mutex", "Artifacts dropped", "Artifacts dropped", true, []string{"Artifacts dropped"}},
	{"Registry Key", "regkey", "Persistence mechanism", "Persistence mechanism", true,
		[]string{"Artifacts dropped", "Persistence mechanism", "External analysis"}},
	{"Service Name", "windows-service-name", "Artifacts dropped", "Artifacts dropped", false, []string{"Artifacts dropped"}},
	{"User-agent", "user-agent", "Network activity", "Network activity", false, catsNet},
	{"CVE", "vulnerability", "External analysis", "External analysis", false,
		[]string{"Payload delivery", "Payload installation", "External analysis"}},
	{"ASN", "AS", "Network activity", "Network activity", false, catsNet},
	{"MAC Address", "mac-address", "Network activity", "Network activity", false, catsNet},
	{"JA3", "ja3-fingerprint-md5", "Network activity", "Network activity", true, catsNet},
	{"Bitcoin Address", "btc", "Financial fraud", "Financial fraud", true, []string{"Financial fraud"}},
	{"Username", "text", "Other", "Other", false, catsText},
	{"Password", "text", "Other", "Other", false, catsText},
	{"String", "text", "Other", "Other", false, catsText},
	{"Binary String", "text", "Other", "Other", false, catsText},
	{"x509 Serial", "text", "Other", "Other", false, catsText},
	{"x509 Subject", "text", "Other", "Other", false, catsText},
	{"GOST Hash", "text", "Other", "Other", false, catsText},
	{"Hash ION", "text", "Other", "Other", false, catsText},
	{"File Mapping", "text", "Other", "Other", false, catsText},
}

// typeIndex maps a folded ThreatQ type name to its row.
var typeIndex = func() map[string]int {
	m := make(map[string]int, len(typeRows))
	for i, r := range typeRows {
		m[foldTypeName(r.threatq)] = i
	}
	return m
}()

// foldTypeName lower-cases a ThreatQ type name and drops everything but
// letters and digits, so "SHA-256", "sha256" and "SHA 256" are one name.
func foldTypeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// MapType returns the MISP attribute type and category for a ThreatQ
// indicator type (the default ThreatQ names; case, spaces and dashes do not
// matter), or false when MISP has no place for it. value refines the
// choice: a "Fuzzy Hash" that is not in ssdeep's blocksize:hash:hash format
// is sent as lossy "text".
//
// Every Type returned exists in MISP 2.5.1 and its Category is allowed for
// it (a test checks this against describeTypes.json).
func MapType(threatqType, value string) (Mapping, bool) {
	i, ok := typeIndex[foldTypeName(threatqType)]
	if !ok {
		return Mapping{}, false
	}
	r := typeRows[i]
	if r.mispType == "ssdeep" && !isSsdeep(strings.TrimSpace(value)) {
		return Mapping{Type: "text", Category: "Other", ToIDs: false, Lossy: true}, true
	}
	return Mapping{Type: r.mispType, Category: r.category, ToIDs: r.defaultToIDs, Lossy: r.mispType == "text"}, true
}
