package tqsim

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// DefaultGenerateTypes returns the types [Generate] mixes by default, a
// new slice at each call: those CTR supports and some it does not (CIDR
// Block, ASN, SHA-512, String, Fuzzy Hash).
func DefaultGenerateTypes() []string {
	return []string{
		"IP Address", "IPv6 Address", "FQDN", "URL", "MD5", "SHA-1", "SHA-256",
		"Email Address", "Filename", "Mutex", "User-agent",
		"CIDR Block", "ASN", "SHA-512", "String", "Fuzzy Hash",
	}
}

// GenerateOptions says what [Generate] makes.
type GenerateOptions struct {
	// Seed makes the dataset: the same seed gives the same indicators.
	Seed uint64
	// N is the number of indicators.
	N int
	// Start and End bound updated_at: spread over [Start, End). When End
	// is not after Start, End is Start plus 30 days.
	Start, End time.Time
	// Types are the type names to mix, evenly; [DefaultGenerateTypes]
	// when empty.
	Types []string
}

var (
	words = []string{"alpha", "bravo", "cobalt", "delta", "ember", "falcon", "granite", "harbor", "indigo",
		"juniper", "kestrel", "lumen", "marble", "nimbus", "onyx", "pylon", "quartz", "raven", "sable",
		"tundra", "umber", "vortex", "willow", "xenon", "yonder", "zephyr"}
	tlds      = []string{"com", "net", "org", "info", "ru", "cn", "top", "xyz", "io", "biz"}
	exts      = []string{"exe", "dll", "doc", "xls", "js", "vbs", "ps1", "zip", "pdf", "scr"}
	feeds     = []string{"AlienVault OTX", "abuse.ch URLhaus", "Emerging Threats", "CrowdStrike Intel", "Analyst Submitted"}
	countries = []string{"US", "RU", "CN", "DE", "NL", "BR", "IR", "KP", "FR", "GB"}
	levels    = []string{"Low", "Medium", "High"}
	agents    = []string{"Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "Mozilla/4.0 (compatible; MSIE 8.0)", "curl/7.64.1", "python-requests/2.31"}
)

// Generate returns N indicators of mixed types with realistic, unique
// values, mostly Active (a fifth carry another status), scores 0..10,
// updated_at spread over [Start, End), and most with attribute rows of
// their feed under names CTR enrichment also writes. It is deterministic for a seed. Ids are left zero for
// [Server.Load] to assign.
func Generate(o GenerateOptions) []Indicator {
	types := o.Types
	if len(types) == 0 {
		types = DefaultGenerateTypes()
	}
	start, end := o.Start.UTC(), o.End.UTC()
	if start.IsZero() {
		start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if !end.After(start) {
		end = start.Add(30 * 24 * time.Hour)
	}
	span := end.Unix() - start.Unix()
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0xdeadbeefcafe))
	feedSrc := make([][]string, len(feeds))
	for i, f := range feeds {
		feedSrc[i] = []string{f}
	}
	// Sorted updated_at: draw N offsets and sort them cheaply by
	// generating them in increasing order (uniform spacings).
	out := make([]Indicator, max(o.N, 0))
	step := float64(span) / float64(max(o.N, 1))
	for i := range out {
		h := mix64(o.Seed*0x9e3779b97f4a7c15 + uint64(i) + 1)
		typ := types[i%len(types)]
		off := int64(float64(i)*step + rng.Float64()*step)
		updated := start.Add(time.Duration(min(off, span-1)) * time.Second)
		created := updated.Add(-time.Duration(rng.Int64N(30*24*3600)) * time.Second)
		in := Indicator{
			Value:     value(typ, i, o.Seed, h),
			Type:      typ,
			Status:    pickStatus(rng),
			Score:     float64(pickScore(rng)),
			CreatedAt: created,
			UpdatedAt: updated,
			TouchedAt: updated,
			Sources:   feedSrc[rng.IntN(len(feedSrc))],
		}
		if rng.IntN(100) < 3 {
			m := float64(rng.IntN(11))
			in.ManualScore = &m
		}
		// Other feeds' rows, under names CTR enrichment writes too
		// (Confidence, Severity, Description, Source, Reference): a
		// connector that deletes rows by name alone deletes these.
		feed := in.Sources // shared: Load keeps the slice
		lvl := levels[rng.IntN(len(levels))]
		switch rng.IntN(6) {
		case 0:
		case 1:
			in.Attributes = []Attribute{{Name: "Confidence", Value: lvl, Sources: feed}}
		case 2:
			in.Attributes = []Attribute{{Name: "Description", Value: "Malicious Host", Sources: feed}, {Name: "Country", Value: countries[rng.IntN(len(countries))], Sources: feed}}
		case 3:
			in.Attributes = []Attribute{{Name: "Source", Value: feed[0], Sources: feed}, {Name: "Reference", Value: "https://intel.example/" + b36(h), Sources: feed}}
		default:
			in.Attributes = []Attribute{{Name: "Severity", Value: lvl, Sources: feed}}
		}
		out[i] = in
	}
	return out
}

func pickStatus(rng *rand.Rand) string {
	switch x := rng.IntN(100); {
	case x < 80:
		return "Active"
	case x < 88:
		return "Review"
	case x < 94:
		return "Expired"
	case x < 98:
		return "Indirect"
	default:
		return "Whitelisted"
	}
}

func pickScore(rng *rand.Rand) int {
	// Weighted towards the middle, as generated scores are.
	return min(10, (rng.IntN(11)+rng.IntN(11)+1)/2)
}

func b36(x uint64) string { return strconv.FormatUint(x, 36) }

func hexN(h uint64, n int) string {
	b := make([]byte, 0, n)
	for len(b) < n {
		for i := 60; i >= 0 && len(b) < n; i -= 4 {
			b = append(b, hexDigits[(h>>uint(i))&0xf])
		}
		h = mix64(h + 0x9e3779b97f4a7c15)
	}
	return string(b)
}

// ipv4 is a bijection of i: unique for i < 2^32.
func ipv4(i int, seed uint64) [4]byte {
	x := uint32((uint64(i) + seed*7919) * 2654435761)
	return [4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}
}

func dotted(a [4]byte) string {
	b := strconv.AppendUint(nil, uint64(a[0]), 10)
	for _, x := range a[1:] {
		b = append(b, '.')
		b = strconv.AppendUint(b, uint64(x), 10)
	}
	return string(b)
}

// value makes a unique value of typ for index i: h is a bijection of i,
// and each value embeds it (or, for addresses, a bijection of i).
func value(typ string, i int, seed, h uint64) string {
	w1, w2 := words[h%uint64(len(words))], words[(h>>8)%uint64(len(words))]
	tld := tlds[(h>>16)%uint64(len(tlds))]
	switch typ {
	case "IP Address":
		return dotted(ipv4(i, seed))
	case "CIDR Block":
		a := ipv4(i, seed)
		return dotted(a) + "/32"
	case "IPv6 Address":
		return "2a0" + strconv.FormatUint(h>>60, 16) + ":" + strconv.FormatUint((h>>44)&0xffff, 16) + ":" +
			strconv.FormatUint((h>>28)&0xffff, 16) + ":" + strconv.FormatUint((h>>12)&0xffff, 16) + "::" +
			strconv.FormatUint(h&0xfff, 16)
	case "FQDN":
		return w1 + "-" + b36(h) + "." + w2 + "." + tld
	case "URL":
		scheme := "http://"
		if h&1 == 0 {
			scheme = "https://"
		}
		return scheme + w1 + "." + tld + "/" + w2 + "/" + b36(h) + ".php?id=" + strconv.Itoa(i%1000)
	case "MD5":
		return hexN(h, 32)
	case "SHA-1":
		return hexN(h, 40)
	case "SHA-256":
		return hexN(h, 64)
	case "SHA-512":
		return hexN(h, 128)
	case "Email Address":
		return w1 + "." + w2 + "+" + b36(h) + "@" + words[(h>>24)%uint64(len(words))] + "mail." + tld
	case "Filename":
		return w1 + "_" + b36(h) + "." + exts[(h>>20)%uint64(len(exts))]
	case "Mutex":
		return "Global\\" + w1 + "-" + hexN(h, 16)
	case "User-agent":
		return agents[(h>>4)%uint64(len(agents))] + " " + w1 + "/" + b36(h)
	case "ASN":
		return "AS" + strconv.FormatUint(uint64(uint32((uint64(i)+seed*7919)*2654435761)), 10)
	case "Fuzzy Hash":
		return "3072:" + b36(h) + hexN(^h, 24) + ":" + b36(mix64(h)) + "w"
	default: // String and anything else
		return w1 + " " + w2 + " " + b36(h)
	}
}
