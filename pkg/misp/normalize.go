package misp

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MaxValueBytes is the longest value MISP stores (its maxTextLength rule).
const MaxValueBytes = 65535

// Messages MISP gives for values it refuses (AttributeValidationTool,
// MispAttribute::$validate), reused as InvalidValueError reasons.
const (
	msgWrongFormat = `Value not in the right type/format. Please double check the value or select type "other".`
	msgNewline     = "Value must not contain new line character."
	msgEmpty       = "Value cannot be empty."
	msgControl     = "Value provided consists purely of control characters and is therefore considered to be empty."
	msgTooLong     = "The entered string is too long and would get truncated. Please consider adding the data as an attachment instead"
	msgBadIP       = "IP address has an invalid format."
	msgBadCIDR     = "Invalid CIDR notation value found."
	msgEmail       = `Email address has an invalid format. Please double check the value or select type "other".`
	msgCVE         = "Invalid format. Expected: CVE-xxxx-xxxx..."
	msgAS          = "AS number have to be integer between 1 and 4294967295"
	msgSsdeep      = "Invalid SSDeep hash. The format has to be blocksize:hash:hash"
	msgService     = "Invalid format. Only values shorter than 256 characters that don't include any forward or backward slashes are allowed."
)

// hashLengths is AttributeValidationTool::HASH_HEX_LENGTH.
var hashLengths = map[string]int{
	"authentihash": 64, "md5": 32, "imphash": 32, "sha1": 40, "git-commit-id": 40,
	"x509-fingerprint-md5": 32, "x509-fingerprint-sha1": 40, "x509-fingerprint-sha256": 64,
	"ja3-fingerprint-md5": 32, "jarm-fingerprint": 62, "hassh-md5": 32, "hasshserver-md5": 32,
	"pehash": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128, "sha512/224": 56,
	"sha512/256": 64, "sha3-224": 56, "sha3-256": 64, "sha3-384": 96, "sha3-512": 128, "dom-hash": 32,
}

// lowerTypes are lower-cased before validation (modifyBeforeValidation).
var lowerTypes = setOf("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512/224", "sha512/256",
	"sha3-224", "sha3-256", "sha3-384", "sha3-512", "ja3-fingerprint-md5", "jarm-fingerprint", "hassh-md5",
	"hasshserver-md5", "hostname", "pehash", "authentihash", "vhash", "imphash", "telfhash", "tlsh",
	"anonymised", "cdhash", "email", "email-src", "email-dst", "target-email", "whois-registrant-email",
	"dom-hash")

// freeTypes accept any value.
var freeTypes = setOf("mutex", "process-state", "snort", "bro", "zeek", "community-id", "anonymised",
	"pattern-in-file", "pattern-in-traffic", "pattern-in-memory", "filename-pattern", "pgp-public-key",
	"pgp-private-key", "yara", "stix2-pattern", "sigma", "gene", "kusto-query", "mime-type",
	"identity-card-number", "cookie", "comment", "text", "other", "cpe", "email-attachment", "email-body",
	"email-header", "first-name", "middle-name", "last-name", "full-name")

// lineTypes accept any value without a newline.
var lineTypes = setOf("target-user", "campaign-name", "campaign-id", "threat-actor", "target-machine",
	"target-org", "target-location", "target-external", "email-subject", "malware-type", "url", "uri",
	"user-agent", "regkey", "filename", "pdb", "windows-scheduled-task", "whois-registrant-name",
	"whois-registrant-org", "whois-registrar", "whois-creation-date", "date-of-birth", "place-of-birth",
	"gender", "passport-number", "passport-country", "passport-expiration", "redress-number", "nationality",
	"visa-number", "issue-date-of-the-visa", "primary-residence", "country-of-residence",
	"special-service-request", "frequent-flyer-number", "travel-details", "payment-details",
	"place-port-of-original-embarkation", "place-port-of-clearance",
	"place-port-of-onward-foreign-destination", "passenger-name-record-locator-number",
	"email-dst-display-name", "email-src-display-name", "email-reply-to", "email-x-mailer",
	"email-mime-boundary", "email-thread-index", "email-message-id", "github-username",
	"github-repository", "github-organisation", "twitter-id", "dkim", "dkim-signature", "favicon-mmh3",
	"chrome-extension-id", "mobile-application-id", "azure-application-id", "named pipe")

var emailTypes = setOf("email", "email-src", "email-dst", "target-email", "whois-registrant-email",
	"eppn", "dns-soa-email", "jabber-id")

var alnumTypes = setOf("iban", "bic", "btc", "dash", "xmr")

// otherTypes are the remaining types Normalize handles.
var otherTypes = setOf("ip-src", "ip-dst", "domain", "vulnerability", "windows-service-name",
	"windows-service-displayname", "AS", "mac-address", "mac-eui-64", "ssdeep", "tlsh", "telfhash", "cdhash")

func setOf(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// Known reports whether [Normalize] handles MISP attribute type t.
func Known(t string) bool {
	_, hash := hashLengths[t]
	return hash || lowerTypes[t] || freeTypes[t] || lineTypes[t] || emailTypes[t] || alnumTypes[t] || otherTypes[t]
}

// Normalize does to value what MISP does before it validates an attribute
// and checks it for uniqueness (MispAttribute::beforeValidateMassage and
// AttributeValidationTool, MISP 2.5), so that the exporter's dedupe keys
// and uuid5 names match what MISP stores, and so that a value MISP would
// refuse is found (and dead-lettered) before it is sent. In order:
//
//   - trim " \t\n\r\0\x0B" (PHP trim);
//   - refang: hxxp/hxtp/htxp/meow/h[tt]p → http at the start and
//     [hxxp://] → http:// and [:] → : (url); [.] [dot] (dot) → . (url,
//     ip-src/ip-dst, domain, hostname, email/email-src/email-dst);
//     [@] [at] → @ (email, email-src, email-dst);
//   - 4-byte UTF-8 characters (emoji, …) become "?" (MISP's utf8 columns);
//   - per type: ip-src/ip-dst write IPv6 as glibc's inet_ntop does (only
//     when ":" is not the first character, as MISP does) and drop a /32 (IPv4) or /128 (IPv6) suffix,
//     keeping other CIDR prefixes as given; domain is lower-cased, stripped
//     of leading and trailing dots and, when not valid as is, converted to
//     its ASCII form by UTS #46 as PHP's idn_to_ascii (ICU) does
//     (golang.org/x/net/idna); hostname, email types and hash types are
//     lower-cased (ASCII letters only, as PHP's strtolower);
//     vulnerability is upper-cased (en dash → "-"); AS loses an "AS"
//     prefix and asdot "a.b" becomes a*65536+b; mac-address becomes
//     aa:bb:cc:dd:ee:ff; x509 fingerprints lose their colons;
//   - validate: hashes by hex length, IPs and CIDRs, the domain regex
//     ^[A-Z0-9.\-_]+\.[A-Z0-9\-]{2,}$ (i, ASCII only as in PCRE without
//     /u), emails ^.[^\s]*@.*\..*$,
//     CVE-nnnn-nnnn…, AS 0..4294967295, ssdeep blocksize:hash:hash,
//     windows-service-name ≤ 256 bytes without slashes, no newline for
//     url, uri, filename, regkey, user-agent and the like; no value empty,
//     purely control characters or over 65,535 bytes.
//
// An invalid value gives an [*InvalidValueError] (errors.Is
// ErrInvalidValue) whose reason is MISP's own message; a type Normalize does
// not handle (composite types such as domain|ip, attachments) gives
// ErrUnknownType.
func Normalize(mispType, value string) (string, error) {
	if !Known(mispType) {
		return "", fmt.Errorf("normalize %q value: %w", mispType, ErrUnknownType)
	}
	v := strings.Trim(value, " \t\n\r\x00\x0b")
	v = refang(mispType, v)
	v = replace4ByteRunes(v)
	v = modify(mispType, v)
	invalid := func(reason string) (string, error) {
		return "", &InvalidValueError{Type: mispType, Reason: reason}
	}
	if v == "" {
		return invalid(msgEmpty)
	}
	if allControl(v) {
		return invalid(msgControl)
	}
	if reason := validate(mispType, v); reason != "" {
		return invalid(reason)
	}
	if len(v) > MaxValueBytes {
		return invalid(msgTooLong)
	}
	return v, nil
}

var refangHTTP = regexp.MustCompile(`(?i)^(hxxp|hxtp|htxp|meow|h\[tt\]p)`)

var (
	dotTypes = setOf("link", "url", "ip-dst", "ip-src", "domain", "hostname", "email", "email-src", "email-dst")
	atTypes  = setOf("email", "email-src", "email-dst")
	dotRepl  = strings.NewReplacer("[.]", ".", "[dot]", ".", "(dot)", ".")
	atRepl   = strings.NewReplacer("[@]", "@", "[at]", "@")
)

// refang is ComplexTypeTool::refangValue.
func refang(t, v string) string {
	isURL := t == "url" || t == "link"
	if isURL {
		v = refangHTTP.ReplaceAllString(v, "http")
	}
	if dotTypes[t] {
		v = dotRepl.Replace(v)
	}
	if isURL {
		v = strings.ReplaceAll(v, "[hxxp://]", "http://")
	}
	if atTypes[t] {
		v = atRepl.Replace(v)
	}
	if isURL {
		v = strings.ReplaceAll(v, "[:]", ":")
	}
	return v
}

// replace4ByteRunes is AttributeValidationTool::handle4ByteUnicode: every
// 4-byte UTF-8 sequence becomes "?"; other bytes are kept as they are.
func replace4ByteRunes(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] >= 0xf0 {
			return replace4ByteRunesSlow(v)
		}
	}
	return v
}

func replace4ByteRunesSlow(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		if size == 4 && r != utf8.RuneError {
			b.WriteByte('?')
		} else {
			b.WriteString(v[i : i+size])
		}
		i += size
	}
	return b.String()
}

// asciiLower is PHP 8's strtolower: ASCII letters only.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.Map(func(r rune) rune {
				if 'A' <= r && r <= 'Z' {
					return r + ('a' - 'A')
				}
				return r
			}, s)
		}
	}
	return s
}

// asciiUpper is PHP 8's strtoupper.
func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - ('a' - 'A')
		}
		return r
	}, s)
}

// modify is AttributeValidationTool::modifyBeforeValidation for the types
// Normalize handles.
func modify(t, v string) string {
	switch {
	case t == "ip-src" || t == "ip-dst":
		return normalizeIP(v)
	case t == "domain":
		v = strings.Trim(asciiLower(v), ".")
		if !domainValid(v) {
			if p, ok := toASCII(v); ok {
				v = p
			}
		}
		return v
	case lowerTypes[t]:
		return asciiLower(v)
	case t == "vulnerability":
		return asciiUpper(strings.ReplaceAll(v, "–", "-"))
	case t == "x509-fingerprint-md5" || t == "x509-fingerprint-sha1" || t == "x509-fingerprint-sha256":
		return asciiLower(strings.ReplaceAll(v, ":", ""))
	case t == "mac-address" || t == "mac-eui-64":
		v = strings.NewReplacer(".", "", ":", "", "-", "", " ", "").Replace(asciiLower(v))
		var b strings.Builder
		for i := 0; i < len(v); i += 2 {
			if i > 0 {
				b.WriteByte(':')
			}
			b.WriteString(v[i:min(i+2, len(v))])
		}
		return b.String()
	case t == "AS":
		if len(v) >= 2 && asciiUpper(v[:2]) == "AS" {
			v = v[2:]
		}
		if a, b, ok := strings.Cut(v, "."); ok && isDigits(a) && isDigits(b) {
			hi, err1 := strconv.ParseUint(a, 10, 32)
			lo, err2 := strconv.ParseUint(b, 10, 32)
			if err1 == nil && err2 == nil {
				return strconv.FormatUint(hi*65536+lo, 10)
			}
		}
		return v
	}
	return v
}

// validate is AttributeValidationTool::validate: "" when v is valid for t,
// else MISP's message.
func validate(t, v string) string {
	if n, ok := hashLengths[t]; ok {
		if len(v) == n && isHex(v) {
			return ""
		}
		if t == "pehash" {
			return "The input doesn't match the expected sha1 format (expected: 40 hexadecimal characters)."
		}
		return fmt.Sprintf(`Checksum has an invalid length or format (expected: %d hexadecimal characters). Please double check the value or select type "other".`, n)
	}
	switch {
	case t == "ip-src" || t == "ip-dst":
		return validateIP(v)
	case t == "domain" || t == "hostname":
		if domainValid(v) {
			return ""
		}
		return strings.ToUpper(t[:1]) + t[1:] + ` has an invalid format. Please double check the value or select type "other".`
	case emailTypes[t]:
		if emailRE.MatchString(v) {
			return ""
		}
		return msgEmail
	case t == "vulnerability":
		if cveRE.MatchString(v) {
			return ""
		}
		return msgCVE
	case t == "windows-service-name" || t == "windows-service-displayname":
		if len(v) > 256 || strings.ContainsAny(v, `/\`) {
			return msgService
		}
		return ""
	case t == "AS":
		if isDigits(v) {
			if n, err := strconv.ParseUint(v, 10, 64); err == nil && n <= 4294967295 {
				return ""
			}
		}
		return msgAS
	case t == "mac-address":
		return matchOr(macRE, v)
	case t == "mac-eui-64":
		return matchOr(eui64RE, v)
	case t == "ssdeep":
		if isSsdeep(v) {
			return ""
		}
		return msgSsdeep
	case t == "tlsh":
		s := strings.TrimPrefix(v, "t")
		if len(s) > 35 && isHex(s) {
			return ""
		}
		return `Checksum has an invalid length or format (expected: at least 35 hexadecimal characters, optionally starting with t1 instead of hexadecimal characters). Please double check the value or select type "other".`
	case t == "telfhash":
		if len(v) == 70 || len(v) == 72 {
			return ""
		}
		return `Checksum has an invalid length or format (expected: 70 or 72 hexadecimal characters). Please double check the value or select type "other".`
	case t == "cdhash":
		if len(v) >= 40 && isHex(v) && asciiLower(v) == v {
			return ""
		}
		return "The input doesn't match the expected format (expected: 40 or more hexadecimal characters)"
	case alnumTypes[t]:
		return matchOr(alnumRE, v)
	case lineTypes[t]:
		if strings.Contains(v, "\n") {
			return msgNewline
		}
		return ""
	case freeTypes[t], lowerTypes[t]:
		return ""
	}
	return msgWrongFormat
}

var (
	domainRE = regexp.MustCompile(`^[A-Za-z0-9.\-_]+\.[A-Za-z0-9\-]{2,}$`)
	emailRE  = regexp.MustCompile(`^.[^\t\n\v\f\r ]*@.*\..*$`)
	cveRE    = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)
	macRE    = regexp.MustCompile(`^([a-fA-F0-9]{2}:?){6}$`)
	eui64RE  = regexp.MustCompile(`^([a-fA-F0-9]{2}:?){8}$`)
	alnumRE  = regexp.MustCompile(`^[a-zA-Z0-9]+$`)
	ssdeepRE = regexp.MustCompile(`^([0-9]+):([0-9a-zA-Z/+]*):([0-9a-zA-Z/+]*)$`)
)

func matchOr(re *regexp.Regexp, v string) string {
	if re.MatchString(v) {
		return ""
	}
	return msgWrongFormat
}

func domainValid(v string) bool { return domainRE.MatchString(v) }

func isSsdeep(v string) bool { return ssdeepRE.MatchString(v) }

// isDigits is PHP's ctype_digit: non-empty, ASCII digits only.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isHex is PHP's ctype_xdigit.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// allControl is PHP's ctype_cntrl: every byte is a control character.
func allControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x20 && s[i] != 0x7f {
			return false
		}
	}
	return s != ""
}

// parseIP is PHP's filter_var(FILTER_VALIDATE_IP) and inet_pton: IPv4
// (no leading zeros) or IPv6, without a zone.
func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// normalizeIP is AttributeValidationTool::normalizeIp. It checks for ':'
// and '/' the way PHP's strpos is truthy: at a position other than 0.
func normalizeIP(v string) string {
	if i := strings.IndexByte(v, '/'); i > 0 {
		ip, rng := v[:i], v[i+1:]
		if strings.IndexByte(ip, ':') > 0 {
			if a, ok := parseIP(ip); ok {
				ip = ntop(a)
			}
		}
		if (rng == "32" && strings.IndexByte(v, '.') > 0) || (rng == "128" && strings.IndexByte(v, ':') > 0) {
			return ip
		}
		return ip + "/" + rng
	}
	if strings.IndexByte(v, ':') > 0 {
		if a, ok := parseIP(v); ok {
			return ntop(a)
		}
	}
	return v
}

// ntop formats an address as glibc's inet_ntop does: lower-case hex
// words without leading zeros, the first longest run of two or more zero
// words as "::", and dotted IPv4 for the last 32 bits when the first 96
// bits are zero in a run of exactly six words (IPv4-compatible, so ::2
// stays ::2 but ::1.2.3.4 is dotted) or the address is IPv4-mapped.
func ntop(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	var w [8]uint16
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	best, bestLen := -1, 0
	for i := 0; i < 8; {
		if w[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && w[j] == 0 {
			j++
		}
		if j-i > bestLen {
			best, bestLen = i, j-i
		}
		i = j
	}
	if bestLen < 2 {
		best = -1
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if best >= 0 && i >= best && i < best+bestLen {
			if i == best {
				sb.WriteByte(':')
			}
			continue
		}
		if i > 0 {
			sb.WriteByte(':')
		}
		if i == 6 && best == 0 && (bestLen == 6 || (bestLen == 5 && w[5] == 0xffff)) {
			sb.WriteString(netip.AddrFrom4([4]byte(b[12:16])).String())
			break
		}
		sb.WriteString(strconv.FormatUint(uint64(w[i]), 16))
	}
	if best >= 0 && best+bestLen == 8 {
		sb.WriteByte(':')
	}
	return sb.String()
}

func validateIP(v string) string {
	if strings.Contains(v, "/") {
		parts := strings.Split(v, "/")
		if len(parts) != 2 || !isDigits(parts[1]) {
			return msgBadCIDR
		}
		n, err := strconv.ParseUint(parts[1], 10, 64)
		if err != nil {
			n = 1 << 20
		}
		a, ok := parseIP(parts[0])
		switch {
		case !ok:
			return msgBadIP
		case a.Is4() && n > 32:
			return "Invalid CIDR notation value found, for IPv4 must be lower or equal 32."
		case !a.Is4() && n > 128:
			return "Invalid CIDR notation value found, for IPv6 must be lower or equal 128."
		}
		return ""
	}
	if _, ok := parseIP(v); !ok {
		return msgBadIP
	}
	return ""
}

// icuUTS46 is PHP's idn_to_ascii($d) with its defaults (IDNA_DEFAULT,
// INTL_IDNA_VARIANT_UTS46) as ICU applies them: UTS #46 mapping with
// transitional processing (ß → ss, joiners dropped), hyphen, leading
// combining mark and DNS length checks, no STD3 ASCII rules, no Bidi rule.
// (x/net ties the combining-mark check to CheckJoiners; its ContextJ part
// never fires, because transitional mapping has already dropped the
// joiners, as ICU's has.)
var icuUTS46 = idna.New(
	idna.MapForLookup(),
	idna.Transitional(true),
	idna.StrictDomainName(false),
	idna.CheckJoiners(true),
	idna.CheckHyphens(true),
	idna.VerifyDNSLength(true),
)

// toASCII is idn_to_ascii: the ASCII (punycode) form of a domain, or false
// where ICU reports any error (PHP then returns false and MISP keeps the
// value as it was).
func toASCII(d string) (string, bool) {
	out, err := icuUTS46.ToASCII(d)
	if err != nil {
		return "", false
	}
	return out, true
}
