package mispsim

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/idna"
	"golang.org/x/text/collate"
	"golang.org/x/text/language"
)

// This file is MISP 2.5.1's value pipeline, written from its PHP
// (MispAttribute::beforeValidateMassage, ComplexTypeTool::refangValue,
// AttributeValidationTool::modifyBeforeValidation and ::validate, and the
// value rules of MispAttribute::$validate) for the simulator alone: it
// shares no code with pkg/misp, so that a mistake in the client's
// normaliser shows up against the simulator instead of being agreed with.
// Both are checked against golden cases computed by running MISP's PHP
// (pkg/misp/testdata/golden.json).

// massage is beforeValidateMassage for the value: PHP trim, refang, then
// modifyBeforeValidation.
func massage(typ, v string) string {
	v = strings.Trim(v, " \t\n\r\x00\x0b")
	v = phpRefang(typ, v)
	return modifyBeforeValidation(typ, handle4Byte(v))
}

// checkValue runs the value rules in MispAttribute::$validate order
// (stringNotEmpty, stringNotControlCharacters, validComposite,
// userdefined, maxTextLength; uniqueness is the caller's) and returns the
// first message, or "".
func checkValue(typ, v string, composite bool) string {
	if t := strings.Trim(v, " \t\n\r\x00\x0b"); t == "" {
		return "Value cannot be empty."
	}
	if ctypeCntrl(v) {
		return "Value provided consists purely of control characters and is therefore considered to be empty."
	}
	if composite && strings.Count(v, "|") != 1 {
		return "Composite type found but the value not in the composite (value1|value2) format."
	}
	if msg, ok := phpValidate(typ, v); !ok {
		if msg == "" {
			msg = `Value not in the right type/format. Please double check the value or select type "other".`
		}
		return msg
	}
	if len(v) > 65535 {
		return "The entered string is too long and would get truncated. Please consider adding the data as an attachment instead"
	}
	return ""
}

// PCRE patterns, byte-oriented and ASCII-only as PHP runs them without /u.
var (
	reRefangHTTP = regexp.MustCompile(`^([hH][xX][xX][pP]|[hH][xX][tT][pP]|[hH][tT][xX][pP]|[mM][eE][oO][wW]|[hH]\[[tT][tT]\][pP])`)
	reRefangDot  = regexp.MustCompile(`(\[\.\]|\[dot\]|\(dot\))`)
	reRefangAt   = regexp.MustCompile(`\[@\]|\[at\]`)
	reDomain     = regexp.MustCompile(`^[A-Za-z0-9.\-_]+\.[A-Za-z0-9\-]{2,}$`)
	reEmail      = regexp.MustCompile(`^.[^ \t\n\v\f\r]*@.*\..*$`)
	reCVE        = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)
	reSsdeep     = regexp.MustCompile(`^([0-9]+):([0-9a-zA-Z/+]*):([0-9a-zA-Z/+]*)$`)
	reMAC        = regexp.MustCompile(`^([a-fA-F0-9]{2}[:]?){6}$`)
	reEUI64      = regexp.MustCompile(`^([a-fA-F0-9]{2}[:]?){8}$`)
	reAlnum      = regexp.MustCompile(`^[a-zA-Z0-9]+$`)
	reCdhash     = regexp.MustCompile(`^[0-9a-f]{40,}$`)
)

func in(t string, list ...string) bool {
	for _, x := range list {
		if t == x {
			return true
		}
	}
	return false
}

// phpRefang is ComplexTypeTool::refangValue (REFANG_REGEX_TABLE in order).
func phpRefang(t, v string) string {
	if in(t, "link", "url") {
		v = reRefangHTTP.ReplaceAllString(v, "http")
	}
	if in(t, "link", "url", "ip-dst", "ip-src", "domain|ip", "domain", "hostname", "email", "email-src", "email-dst") {
		v = reRefangDot.ReplaceAllString(v, ".")
	}
	if in(t, "link", "url") {
		v = strings.ReplaceAll(v, "[hxxp://]", "http://")
	}
	if in(t, "email", "email-src", "email-dst") {
		v = reRefangAt.ReplaceAllString(v, "@")
	}
	if in(t, "url", "link") {
		v = strings.ReplaceAll(v, "[:]", ":")
	}
	return v
}

// handle4Byte replaces each 4-byte UTF-8 sequence with "?" (MISP's utf8
// columns), leaving other bytes, valid or not, alone.
func handle4Byte(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if i+3 < len(v) && cont(v[i+1]) && cont(v[i+2]) && cont(v[i+3]) &&
			((c == 0xf0 && v[i+1] >= 0x90) || (c >= 0xf1 && c <= 0xf3) || (c == 0xf4 && v[i+1] <= 0x8f)) {
			b.WriteByte('?')
			i += 3
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func cont(c byte) bool { return c >= 0x80 && c <= 0xbf }

// strtolower and strtoupper are PHP 8's: ASCII only.
func strtolower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func strtoupper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// strposTruthy is PHP's `if (strpos($h, $n))`: found at a position > 0.
func strposTruthy(h, n string) bool { return strings.Index(h, n) > 0 }

// ctypeDigit, ctypeXdigit and ctypeCntrl are PHP's, on strings.
func ctypeDigit(s string) bool {
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

func ctypeXdigit(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(s[i] >= '0' && s[i] <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func ctypeCntrl(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x20 && s[i] != 0x7f {
			return false
		}
	}
	return true
}

// idnToASCII is PHP's idn_to_ascii with its defaults, as ICU applies
// UTS #46 (transitional, no STD3 rules); false on any ICU error.
var icu = idna.New(idna.MapForLookup(), idna.Transitional(true), idna.StrictDomainName(false),
	idna.VerifyDNSLength(true))

func idnToASCII(d string) (string, bool) {
	out, err := icu.ToASCII(d)
	return out, err == nil
}

var hashHexLength = map[string]int{
	"authentihash": 64, "md5": 32, "imphash": 32, "telfhash": 70, "sha1": 40, "git-commit-id": 40,
	"x509-fingerprint-md5": 32, "x509-fingerprint-sha1": 40, "x509-fingerprint-sha256": 64,
	"ja3-fingerprint-md5": 32, "jarm-fingerprint": 62, "hassh-md5": 32, "hasshserver-md5": 32,
	"pehash": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128, "sha512/224": 56,
	"sha512/256": 64, "sha3-224": 56, "sha3-256": 64, "sha3-384": 96, "sha3-512": 128, "dom-hash": 32,
}

// modifyBeforeValidation is AttributeValidationTool's, for single types.
func modifyBeforeValidation(t, v string) string {
	switch {
	case t == "ip-src" || t == "ip-dst":
		return normalizeIP(v)
	case in(t, "md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512/224", "sha512/256",
		"sha3-224", "sha3-256", "sha3-384", "sha3-512", "ja3-fingerprint-md5", "jarm-fingerprint",
		"hassh-md5", "hasshserver-md5", "hostname", "pehash", "authentihash", "vhash", "imphash",
		"telfhash", "tlsh", "anonymised", "cdhash", "email", "email-src", "email-dst", "target-email",
		"whois-registrant-email", "dom-hash", "onion-address"):
		return strtolower(v)
	case t == "domain":
		v = strings.Trim(strtolower(v), ".")
		if !reDomain.MatchString(v) {
			if p, ok := idnToASCII(v); ok {
				v = p
			}
		}
		return v
	case t == "vulnerability" || t == "weakness":
		return strtoupper(strings.ReplaceAll(v, "–", "-"))
	case t == "x509-fingerprint-md5" || t == "x509-fingerprint-sha256" || t == "x509-fingerprint-sha1":
		return strtolower(strings.ReplaceAll(v, ":", ""))
	case t == "mac-address" || t == "mac-eui-64":
		v = strings.NewReplacer(".", "", ":", "", "-", "", " ", "").Replace(strtolower(v))
		var parts []string
		for len(v) > 2 {
			parts = append(parts, v[:2])
			v = v[2:]
		}
		return strings.Join(append(parts, v), ":")
	case t == "AS":
		if len(v) >= 2 && strtoupper(v[:2]) == "AS" {
			v = v[2:]
		}
		if strings.Contains(v, ".") {
			p := strings.SplitN(v, ".", 2)
			if ctypeDigit(p[0]) && ctypeDigit(p[1]) {
				a, _ := strconv.ParseFloat(p[0], 64)
				b, _ := strconv.ParseFloat(p[1], 64)
				n := a*65536 + b
				if n <= 1<<62 {
					return strconv.FormatInt(int64(n), 10)
				}
				return strconv.FormatFloat(n, 'E', -1, 64) // PHP float: never ctype_digit.
			}
		}
		return v
	}
	return v
}

// normalizeIP is AttributeValidationTool::normalizeIp.
func normalizeIP(v string) string {
	if strposTruthy(v, "/") {
		ip, rng, _ := strings.Cut(v, "/")
		if strposTruthy(ip, ":") {
			if a, ok := inetPton(ip); ok {
				ip = inetNtop(a)
			}
		}
		if (rng == "32" && strposTruthy(v, ".")) || (rng == "128" && strposTruthy(v, ":")) {
			return ip
		}
		return ip + "/" + rng
	}
	if strposTruthy(v, ":") {
		if a, ok := inetPton(v); ok {
			return inetNtop(a)
		}
	}
	return v
}

// inetPton accepts what glibc's inet_pton and PHP's FILTER_VALIDATE_IP
// accept: dotted quads without leading zeros, IPv6 without a zone.
func inetPton(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	return a, err == nil && a.Zone() == ""
}

// inetNtop is glibc's inet_ntop6 (resolv/inet_ntop.c): the first longest
// run of at least two zero words becomes "::"; the low 32 bits are dotted
// when the run is words 0-5 exactly, or words 0-4 followed by ffff.
func inetNtop(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	var w [8]int
	for i := range w {
		w[i] = int(b[2*i])<<8 | int(b[2*i+1])
	}
	base, length := -1, 0
	cur, curLen := -1, 0
	for i := 0; i <= 8; i++ {
		if i < 8 && w[i] == 0 {
			if cur < 0 {
				cur, curLen = i, 0
			}
			curLen++
			continue
		}
		if cur >= 0 && curLen > length {
			base, length = cur, curLen
		}
		cur = -1
	}
	if length < 2 {
		base = -1
	}
	out := ""
	for i := 0; i < 8; i++ {
		if base >= 0 && i >= base && i < base+length {
			if i == base {
				out += ":"
			}
			continue
		}
		if i != 0 {
			out += ":"
		}
		if i == 6 && base == 0 && (length == 6 || (length == 5 && w[5] == 0xffff)) {
			out += strconv.Itoa(int(b[12])) + "." + strconv.Itoa(int(b[13])) + "." +
				strconv.Itoa(int(b[14])) + "." + strconv.Itoa(int(b[15]))
			return out
		}
		out += strconv.FormatInt(int64(w[i]), 16)
	}
	if base >= 0 && base+length == 8 {
		out += ":"
	}
	return out
}

// phpValidate is AttributeValidationTool::validate: ok, or MISP's message
// ("" when the rule returns false and the generic message applies).
func phpValidate(t, v string) (string, bool) {
	if n, isHash := hashHexLength[t]; isHash && !in(t, "telfhash", "pehash") {
		if len(v) == n && ctypeXdigit(v) {
			return "", true
		}
		return `Checksum has an invalid length or format (expected: ` + strconv.Itoa(n) +
			` hexadecimal characters). Please double check the value or select type "other".`, false
	}
	switch {
	case t == "pehash":
		if len(v) == 40 && ctypeXdigit(v) {
			return "", true
		}
		return "The input doesn't match the expected sha1 format (expected: 40 hexadecimal characters). Keep in mind that MISP currently only supports SHA1 for PEhashes, if you would like to get the support extended to other hash types, make sure to create a github ticket about it at https://github.com/MISP/MISP!", false
	case t == "tlsh":
		s := v
		if s != "" && s[0] == 't' {
			s = s[1:]
		}
		if len(s) > 35 && ctypeXdigit(s) {
			return "", true
		}
		return `Checksum has an invalid length or format (expected: at least 35 hexadecimal characters, optionally starting with t1 instead of hexadecimal characters). Please double check the value or select type "other".`, false
	case t == "telfhash":
		if len(v) == 70 || len(v) == 72 {
			return "", true
		}
		return `Checksum has an invalid length or format (expected: 70 or 72 hexadecimal characters). Please double check the value or select type "other".`, false
	case t == "ssdeep":
		if reSsdeep.MatchString(v) {
			return "", true
		}
		return "Invalid SSDeep hash. The format has to be blocksize:hash:hash", false
	case t == "cdhash":
		if reCdhash.MatchString(v) {
			return "", true
		}
		return "The input doesn't match the expected format (expected: 40 or more hexadecimal characters)", false
	case t == "ip-src" || t == "ip-dst":
		return validateIP(v)
	case t == "mac-address":
		return "", reMAC.MatchString(v)
	case t == "mac-eui-64":
		return "", reEUI64.MatchString(v)
	case t == "hostname" || t == "domain":
		if reDomain.MatchString(v) {
			return "", true
		}
		return strtoupper(t[:1]) + t[1:] + ` has an invalid format. Please double check the value or select type "other".`, false
	case in(t, "email", "email-src", "eppn", "email-dst", "target-email", "whois-registrant-email", "dns-soa-email", "jabber-id"):
		if reEmail.MatchString(v) {
			return "", true
		}
		return `Email address has an invalid format. Please double check the value or select type "other".`, false
	case t == "vulnerability":
		if reCVE.MatchString(v) {
			return "", true
		}
		return "Invalid format. Expected: CVE-xxxx-xxxx...", false
	case t == "windows-service-name" || t == "windows-service-displayname":
		if len(v) > 256 || strings.ContainsAny(v, `\/`) {
			return "Invalid format. Only values shorter than 256 characters that don't include any forward or backward slashes are allowed.", false
		}
		return "", true
	case in(t, "iban", "bic", "btc", "dash", "xmr"):
		return "", reAlnum.MatchString(v)
	case t == "AS":
		if ctypeDigit(v) {
			if n, err := strconv.ParseUint(v, 10, 64); err == nil && n <= 4294967295 {
				return "", true
			}
		}
		return "AS number have to be integer between 1 and 4294967295", false
	case in(t, "mutex", "process-state", "snort", "bro", "zeek", "community-id", "anonymised",
		"pattern-in-file", "pattern-in-traffic", "pattern-in-memory", "filename-pattern", "pgp-public-key",
		"pgp-private-key", "yara", "stix2-pattern", "sigma", "gene", "kusto-query", "mime-type",
		"identity-card-number", "cookie", "attachment", "malware-sample", "comment", "text", "other", "cpe",
		"email-attachment", "email-body", "email-header", "first-name", "middle-name", "last-name", "full-name"):
		return "", true
	case strings.Contains(t, "|"):
		return "", true // Composite types: only the composite rule (checkValue) applies here.
	}
	// The no-newline group (url, uri, filename, regkey, user-agent, the
	// target-*, whois-*, passenger and email header types, …) and any
	// type this file does not list: MISP would throw for an unknown type;
	// the simulator is strict in the same direction and refuses newlines.
	if strings.Contains(v, "\n") {
		return "Value must not contain new line character.", false
	}
	return "", true
}

func validateIP(v string) (string, bool) {
	if strings.Contains(v, "/") {
		parts := strings.Split(v, "/")
		if len(parts) != 2 || !ctypeDigit(parts[1]) {
			return "Invalid CIDR notation value found.", false
		}
		n, err := strconv.ParseUint(parts[1], 10, 64)
		if err != nil {
			n = 1 << 40
		}
		a, ok := inetPton(parts[0])
		switch {
		case !ok:
			return "IP address has an invalid format.", false
		case a.Is4() && n > 32:
			return "Invalid CIDR notation value found, for IPv4 must be lower or equal 32.", false
		case !a.Is4() && n > 128:
			return "Invalid CIDR notation value found, for IPv6 must be lower or equal 128.", false
		}
		return "", true
	}
	if _, ok := inetPton(v); !ok {
		return "IP address has an invalid format.", false
	}
	return "", true
}

// value1Collation is MySQL's utf8mb3_unicode_ci for MISP's value1 column:
// primary strength, so case and accents are ignored. x/text's root
// collation stands in for MySQL's UCA 4.0.0 weights.
var (
	collMu  sync.Mutex
	coll    = collate.New(language.Und, collate.IgnoreCase, collate.IgnoreDiacritics, collate.IgnoreWidth)
	collBuf collate.Buffer
)

// foldKey is the key under which MISP's duplicate rule sees a value: two
// values with equal keys are "a similar attribute".
func foldKey(v string) string {
	collMu.Lock()
	defer collMu.Unlock()
	k := coll.KeyFromString(&collBuf, v)
	out := string(k)
	collBuf.Reset()
	return out
}
