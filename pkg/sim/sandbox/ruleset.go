package sandbox

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

var categories = []struct{ file, classtype, proto, what string }{
	{"emerging-malware.rules", "trojan-activity", "tcp", "MALWARE"},
	{"emerging-exploit.rules", "attempted-admin", "tcp", "EXPLOIT"},
	{"emerging-dns.rules", "bad-unknown", "udp", "DNS"},
	{"emerging-web_client.rules", "attempted-user", "http", "WEB_CLIENT"},
	{"emerging-policy.rules", "policy-violation", "tls", "POLICY"},
	{"emerging-scan.rules", "attempted-recon", "tcp", "SCAN"},
}

const classification = `# sandbox classification.config
config classification: not-suspicious,Not Suspicious Traffic,3
config classification: bad-unknown,Potentially Bad Traffic,2
config classification: attempted-recon,Attempted Information Leak,2
config classification: attempted-user,Attempted User Privilege Gain,1
config classification: attempted-admin,Attempted Administrator Privilege Gain,1
config classification: trojan-activity,A Network Trojan was detected,1
config classification: policy-violation,Potential Corporate Privacy Violation,1
`

// GenerateRuleset returns an ET-shaped tar.gz (rules/<category>.rules and
// rules/classification.config) of n rules spread over a few categories,
// about a third shipped commented out, as ET ships its non-standard rules.
// The same seed gives the same bytes. revBump adds to every rev, so a
// second "release" of the ruleset can be made.
func GenerateRuleset(seed uint64, n, revBump int) ([]byte, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0xa5a5a5a5))
	files := make([]strings.Builder, len(categories))
	for i := range files {
		fmt.Fprintf(&files[i], "# Emerging Threats sandbox ruleset, %s\n#\n", categories[i].file)
	}
	for i := range n {
		c := rng.IntN(len(categories))
		cat := categories[c]
		sid := 2_900_000 + i
		disabled := rng.IntN(3) == 0
		prefix := ""
		if disabled {
			prefix = "#"
		}
		fmt.Fprintf(&files[c], "%salert %s $HOME_NET any -> $EXTERNAL_NET any (msg:\"ET %s Sandbox rule %d \\\"quoted\\\"\"; flow:established,to_server; content:\"|%02x %02x|\"; reference:url,example.com/sid/%d; classtype:%s; sid:%d; rev:%d; metadata:created_at 2026_01_%02d, signature_severity Major;)\n",
			prefix, cat.proto, cat.what, i, rng.IntN(256), rng.IntN(256), sid, cat.classtype, sid, 1+rng.IntN(4)+revBump, 1+rng.IntN(28))
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name, body string) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1767225600, 0), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write([]byte(body))
		return err
	}
	if err := add("rules/classification.config", classification); err != nil {
		return nil, fmt.Errorf("generate ruleset: %w", err)
	}
	for i, c := range categories {
		if err := add("rules/"+c.file, files[i].String()); err != nil {
			return nil, fmt.Errorf("generate ruleset: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("generate ruleset: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("generate ruleset: %w", err)
	}
	return buf.Bytes(), nil
}
