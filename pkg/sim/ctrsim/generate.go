package ctrsim

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// catalogModule is a module GenerateContext may attribute context to,
// with the values that module really produces.
type catalogModule struct {
	name, instanceID, typeID string
	handles                  []string // nil: every type
	source, sourceURI        string   // sourceURI: a format taking the escaped value
	reasons                  map[int]string
	priorities               []int
	origin                   string // relay modules: their sighting relations' origin
	judgementOdds            float64
	// indicators, when set, are titles of the CTIM indicators the
	// module's judgements link to instead of giving a reason (GTI).
	indicators []string
	// sightingsOnly modules report the user's own environment: sightings,
	// no verdict, no judgement.
	sightingsOnly bool
	// disagreeOdds is the chance the judgement's disposition differs from
	// the verdict's (AbuseIPDB: verdict Suspicious, judgements Malicious).
	disagreeOdds float64
}

// catalog lists modules seen in Cisco's examples and the relay modules'
// tests (contract §6.2, §7).
var catalog = []catalogModule{
	{
		name: "Talos Intelligence", instanceID: "03ce55b5-225d-48ae-9654-c120654de377",
		typeID:  "2460c99b-2f01-523b-a65d-30a3c6603245",
		handles: []string{"ip", "ipv6", "domain", "url"},
		source:  "Talos Intelligence", sourceURI: "https://www.talosintelligence.com/reputation_center/lookup?search=%s",
		reasons: map[int]string{
			1: "Good Talos Intelligence reputation score", 2: "Poor Talos Intelligence reputation score",
			3: "Neutral Talos Intelligence reputation score", 4: "Favorable Talos Intelligence reputation score",
			5: "Unknown Talos Intelligence reputation score",
		},
		priorities: []int{90}, judgementOdds: 0.95,
	},
	{
		name: "AMP File Reputation", instanceID: "21efe095-a80b-4a14-aa50-3cd30aa12966",
		typeID:  "6f24c0f4-3ca7-4b38-af8b-7dbfaef3ab96",
		handles: []string{"sha256"},
		source:  "AMP Protect DB",
		reasons: map[int]string{
			1: "AMP ProtectDB Clean", 2: "AMP ProtectDB Conviction", 3: "AMP ProtectDB Suspicious",
			4: "AMP ProtectDB Common", 5: "AMP ProtectDB Unknown",
		},
		priorities: []int{90}, judgementOdds: 0.9,
	},
	{
		name: "SecureX Global Threat Intelligence", instanceID: "06ce1f6c-fc38-44f3-92c7-08b15258bd89",
		typeID:  "f0c76f8e-e766-495e-8804-6c6f9247f4db",
		handles: []string{"ip", "ipv6", "domain", "url", "sha256", "sha1", "md5"},
		source:  "Talos Threat Advisory Blog", sourceURI: "https://blog.talosintelligence.com/?s=%s",
		priorities: []int{95}, judgementOdds: 0.8,
		indicators: []string{
			"Threat Spotlight: Following the LNK metadata trail",
			"Threat Roundup: weekly malware activity",
			"Vulnerability Spotlight: remote code execution",
		},
	},
	{
		name: "Private Intelligence", instanceID: "0e0a3818-0ed0-403f-943a-aca1ad05b99c",
		typeID: "2c8b4134-c521-5be5-aaf8-af06e5e27cbb",
		source: "SOC analyst",
		reasons: map[int]string{
			1: "Known good, allow-listed by the SOC", 2: "Confirmed in an incident investigation",
			3: "Seen in phishing triage", 4: "Common infrastructure", 5: "Under review",
		},
		priorities: []int{100, 95}, judgementOdds: 0.85,
	},
	{
		name: "AbuseIPDB", instanceID: "8f3c2d71-5b0e-4c55-9a1e-6d2f7e4b9c10",
		typeID:  relayTypeID,
		handles: []string{"ip", "ipv6"},
		source:  "AbuseIPDB", sourceURI: "https://www.abuseipdb.com/check/%s",
		origin:     "AbuseIPDB Enrichment Module",
		priorities: []int{85}, judgementOdds: 0.9, disagreeOdds: 0.3,
	},
	{
		name: "Pulsedive", instanceID: "5e1d9a44-2c7b-4f0e-8b3d-91a6c0e7f2d5",
		typeID:  relayTypeID,
		handles: []string{"url", "domain", "ip", "ipv6"},
		source:  "Pulsedive", sourceURI: "https://pulsedive.com/browse/?q=%s",
		origin:     "Pulsedive Enrichment Module",
		priorities: []int{85}, judgementOdds: 0.9,
	},
	{
		name: "Secure Endpoint", instanceID: "b7d1c0e2-4a3f-4e59-8c61-2f0d9e8a7b34",
		typeID:  "e1b0c3a4-9d2f-5b67-8e10-3c4d5e6f7a81",
		handles: []string{"sha256", "sha1", "md5", "ip", "domain", "file_name", "file_path", "hostname"},
		source:  "Secure Endpoint", sightingsOnly: true,
	},
}

func (c catalogModule) handlesType(t string) bool {
	if c.handles == nil {
		return true
	}
	for _, h := range c.handles {
		if h == t {
			return true
		}
	}
	return false
}

var (
	confidences = []string{"High", "High", "Medium", "Medium", "Low"}
	severities  = map[int][]string{
		1: {"None", "Info"}, 2: {"High", "Critical", "Medium"}, 3: {"Medium", "Low"},
		4: {"None", "Info"}, 5: {"Unknown", "None"},
	}
	sightingTexts = []string{
		"Found in threat feeds", "Reported for SSH brute force", "Seen in phishing campaign",
		"Observed in malware C2 traffic", "Port scan reported", "Hosting exploit kit landing page",
	}
)

// GenerateContext returns plausible context for obs: one or two modules
// that handle its type (and, one time in four, a sightings-only module
// that handles it: the organisation's own endpoints), each with a disposition (mostly Malicious or
// Suspicious), usually a judgement with realistic confidence, severity,
// priority, reason, source and source_uri, and for relay modules a
// sighting with a relation origin. The same seed and observable (values of
// case-insensitive types in any case) always give the same context, so a
// test can build the knowledge base for a generated dataset and know what
// the enricher should write.
func GenerateContext(seed uint64, obs Observable) []ModuleContext {
	k := keyOf(obs)
	rng := rand.New(rand.NewPCG(seed, hash64(k.typ, k.value)))
	var cands, watchers []int
	for i, c := range catalog {
		switch {
		case !c.handlesType(k.typ):
		case c.sightingsOnly:
			watchers = append(watchers, i)
		default:
			cands = append(cands, i)
		}
	}
	n := 1
	if len(cands) > 1 && rng.IntN(3) == 0 {
		n = 2
	}
	rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	picked := cands[:n]
	for _, w := range watchers {
		if rng.IntN(4) == 0 { // Also seen in the organisation's own environment.
			picked = append(slices.Clone(picked), w)
		}
	}
	out := make([]ModuleContext, 0, len(picked))
	for _, ci := range picked {
		c := catalog[ci]
		disp := pickDisposition(rng)
		mc := ModuleContext{
			Module: c.name, InstanceID: c.instanceID, TypeID: c.typeID,
			Handles: c.handles, Disposition: disp,
		}
		escaped := url.QueryEscape(k.value)
		if c.sightingsOnly {
			mc.Disposition = 0
			mc.Sighting = &Sighting{
				Description: "Seen on " + strconv.Itoa(1+rng.IntN(20)) + " endpoints of this organisation",
				Source:      c.source,
			}
			out = append(out, mc)
			continue
		}
		if rng.Float64() < c.judgementOdds {
			j := &Judgement{
				Confidence: confidences[rng.IntN(len(confidences))],
				Severity:   severities[disp][rng.IntN(len(severities[disp]))],
				Priority:   c.priorities[rng.IntN(len(c.priorities))],
				Reason:     c.reasons[disp],
				Source:     c.source,
			}
			if c.sourceURI != "" {
				j.SourceURI = fmt.Sprintf(c.sourceURI, escaped)
			}
			if j.Reason == "" && c.origin != "" {
				j.Reason = strings.ToLower(sightingTexts[rng.IntN(len(sightingTexts))])
			}
			if len(c.indicators) > 0 {
				j.Indicator = c.indicators[rng.IntN(len(c.indicators))]
			}
			if c.disagreeOdds > 0 && rng.Float64() < c.disagreeOdds {
				j.Disposition = 2 // Malicious
				if disp == 2 {
					j.Disposition = 3
				}
			}
			mc.Judgement = j
		}
		if c.origin != "" || rng.IntN(4) == 0 {
			sg := &Sighting{
				Description: sightingTexts[rng.IntN(len(sightingTexts))],
				Source:      c.source,
				Origin:      c.origin,
			}
			if c.sourceURI != "" {
				sg.SourceURI = fmt.Sprintf(c.sourceURI, escaped)
			}
			mc.Sighting = sg
		}
		out = append(out, mc)
	}
	return out
}

// pickDisposition draws a disposition: Malicious 45%, Suspicious 25%,
// Unknown 15%, Clean 10%, Common 5%.
func pickDisposition(rng *rand.Rand) int {
	switch x := rng.IntN(100); {
	case x < 45:
		return 2
	case x < 70:
		return 3
	case x < 85:
		return 5
	case x < 95:
		return 1
	default:
		return 4
	}
}
