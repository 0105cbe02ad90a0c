package rules_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/rules"
)

// crasherRows are rows of TestParse for inputs that broke a rule parser.
// FuzzParse has found no crasher in this one (3 min and 1.9M executions
// when it was added, c13342e; 90 s and 192k more with -parallel 1 in issue
// 15): a crasher it finds goes here, its file under testdata/fuzz/FuzzParse.
// Until then the rows are the ET contract's hazards (section 3.2) that
// broke other parsers and that TestParse's own rows do not already hold,
// each named for the parser it broke. The header, sid, rev, msg, classtype,
// reference and metadata values expected are suricata-update's (1.2.7,
// Debian's suricata-update package, suricata.update.rule.parse on these
// very lines); the option checks follow the contract ("keep as generic
// options").
var crasherRows = []struct {
	name    string
	line    string
	wantErr error
	check   func(t *testing.T, r *rules.Rule)
}{
	{
		name: "negated port list (sid 2035476; gonids issues 151, 154)",
		line: `alert tcp $HOME_NET ![80,8080] -> $EXTERNAL_NET any (msg:"ET HUNTING Outbound non-HTTP port"; flow:established,to_server; sid:2035476; rev:2;)`,
		check: agrees(rules.Rule{Action: "alert", Proto: "tcp", Src: "$HOME_NET", SrcPort: "![80,8080]", Direction: "->",
			Dst: "$EXTERNAL_NET", DstPort: "any", Msg: "ET HUNTING Outbound non-HTTP port", SID: 2035476, Rev: 2}),
	},
	{
		name: "spaces inside address and port lists (gonids before 2026)",
		line: `alert http [$HOME_NET, $HTTP_SERVERS] any -> [ 10.0.0.0/8 , !10.1.2.3 ] [80, 443] (msg:"spaces in lists"; sid:2900001; rev:1;)`,
		check: agrees(rules.Rule{Action: "alert", Proto: "http", Src: "[$HOME_NET, $HTTP_SERVERS]", SrcPort: "any", Direction: "->",
			Dst: "[ 10.0.0.0/8 , !10.1.2.3 ]", DstPort: "[80, 443]", Msg: "spaces in lists", SID: 2900001, Rev: 1}),
	},
	{
		name: "dotprefix transform (old gonids: unsupported option dotprefix)",
		line: `alert dns $HOME_NET any -> any any (msg:"ET DNS Query to .drp.su"; dns.query; dotprefix; content:".drp.su"; nocase; endswith; reference:url,example.org/drp; classtype:bad-unknown; sid:2900002; rev:1; metadata:created_at 2020_01_01;)`,
		check: both(
			agrees(rules.Rule{Action: "alert", Proto: "dns", Src: "$HOME_NET", SrcPort: "any", Direction: "->", Dst: "any", DstPort: "any",
				Msg: "ET DNS Query to .drp.su", SID: 2900002, Rev: 1, Classtype: "bad-unknown",
				References: []rules.Reference{{"url", "example.org/drp"}}, Metadata: []rules.KV{{"created_at", "2020_01_01"}}}),
			hasOptions("dns.query", "dotprefix", "content", "nocase", "endswith")),
	},
	{
		name: "requires keyword (gonids rejects it as unsupported)",
		line: `alert tcp any any -> any any (msg:"requires"; requires: version >= 7.0.3 < 8; content:"x"; sid:2900003; rev:1;)`,
		check: both(
			agrees(rules.Rule{Action: "alert", Proto: "tcp", Src: "any", SrcPort: "any", Direction: "->", Dst: "any", DstPort: "any",
				Msg: "requires", SID: 2900003, Rev: 1}),
			hasOptions("requires", "content")),
	},
	{
		name: "tcp-pkt in the header (parsers that whitelist protocols)",
		line: `alert tcp-pkt $HOME_NET any -> $EXTERNAL_NET any (msg:"tcp-pkt header"; content:"|00|"; sid:2900004; rev:1;)`,
		check: agrees(rules.Rule{Action: "alert", Proto: "tcp-pkt", Src: "$HOME_NET", SrcPort: "any", Direction: "->",
			Dst: "$EXTERNAL_NET", DstPort: "any", Msg: "tcp-pkt header", SID: 2900004, Rev: 1}),
	},
	{
		name: "http1 in the header (Suricata 7; parsers that whitelist protocols)",
		line: `alert http1 any any -> any any (msg:"http1 header"; http.uri; content:"/a"; sid:2900005; rev:1;)`,
		check: agrees(rules.Rule{Action: "alert", Proto: "http1", Src: "any", SrcPort: "any", Direction: "->", Dst: "any", DstPort: "any",
			Msg: "http1 header", SID: 2900005, Rev: 1}),
	},
	{
		name: "unescaped quote inside pcre (sid 2010376; Security Onion special-cases pcre for it)",
		line: `alert http $EXTERNAL_NET any -> $HOME_NET any (msg:"ET WEB_CLIENT WU_Details"; flow:established,to_client; pcre:"/filename\s*=\s*"WU_Details_/Hi"; sid:2010376; rev:4;)`,
		check: agrees(rules.Rule{Action: "alert", Proto: "http", Src: "$EXTERNAL_NET", SrcPort: "any", Direction: "->",
			Dst: "$HOME_NET", DstPort: "any", Msg: "ET WEB_CLIENT WU_Details", SID: 2010376, Rev: 4}),
	},
	{
		name: "quote after an escaped backslash inside pcre (sid 2017487; quote-aware splitters)",
		line: `alert tcp any any -> any any (msg:"ET x"; pcre:"/^[\r\n\s]*?\,[\x22\x27][\%\\]u"/Rsi"; sid:2017487; rev:3;)`,
		check: agrees(rules.Rule{Action: "alert", Proto: "tcp", Src: "any", SrcPort: "any", Direction: "->", Dst: "any", DstPort: "any",
			Msg: "ET x", SID: 2017487, Rev: 3}),
	},
	{
		name: `escaped ";" in msg (the contract's "TEST RULE\; and some")`,
		line: `alert tcp any any -> any any (msg:"TEST RULE\; and some"; sid:2900006; rev:1;)`,
		check: agrees(rules.Rule{Action: "alert", Proto: "tcp", Src: "any", SrcPort: "any", Direction: "->", Dst: "any", DstPort: "any",
			Msg: "TEST RULE; and some", SID: 2900006, Rev: 1}),
	},
	{
		name: "line over bufio.Scanner's 64 KiB default (go-suricataparser stops silently)",
		line: `alert tcp any any -> any any (msg:"long"; content:"` + strings.Repeat("A", 70000) + `"; sid:2900007; rev:1;)`,
		check: both(
			agrees(rules.Rule{Action: "alert", Proto: "tcp", Src: "any", SrcPort: "any", Direction: "->", Dst: "any", DstPort: "any",
				Msg: "long", SID: 2900007, Rev: 1}),
			func(t *testing.T, r *rules.Rule) {
				t.Helper()
				if len(r.Raw) < 70000 {
					t.Errorf("raw is %d bytes, want the whole line", len(r.Raw))
				}
			}),
	},
}

// TestCrasherRowsPresent keeps crasherRows from going empty again: an
// empty table made TestParse's crasher rows a loop over nothing.
func TestCrasherRowsPresent(t *testing.T) {
	t.Parallel()
	if len(crasherRows) == 0 {
		t.Fatal("no crasher rows")
	}
}

// agrees checks the fields suricata-update reports: the header, sid, rev,
// the msg as Suricata shows it, classtype, references and metadata. The
// rule must be enabled with gid 1.
func agrees(want rules.Rule) func(*testing.T, *rules.Rule) {
	return func(t *testing.T, r *rules.Rule) {
		t.Helper()
		got := []any{r.Enabled, r.Action, r.Proto, r.Src, r.SrcPort, r.Direction, r.Dst, r.DstPort, r.Msg, r.SID, r.GID, r.Rev, r.Classtype}
		exp := []any{true, want.Action, want.Proto, want.Src, want.SrcPort, want.Direction, want.Dst, want.DstPort, want.Msg, want.SID, 1, want.Rev, want.Classtype}
		if !slices.Equal(got, exp) {
			t.Errorf("got %q\nwant %q (enabled action proto src sport dir dst dport msg sid gid rev classtype)", got, exp)
		}
		if !slices.Equal(r.References, want.References) || !slices.Equal(r.Metadata, want.Metadata) {
			t.Errorf("references %q metadata %q, want %q and %q", r.References, r.Metadata, want.References, want.Metadata)
		}
	}
}

// hasOptions checks that the rule keeps the named options, in this order.
func hasOptions(names ...string) func(*testing.T, *rules.Rule) {
	return func(t *testing.T, r *rules.Rule) {
		t.Helper()
		var got []string
		for _, o := range r.Options {
			if slices.Contains(names, o.Name) {
				got = append(got, o.Name)
			}
		}
		if !slices.Equal(got, names) {
			t.Errorf("options %q, want %q among them in order", got, names)
		}
	}
}

func both(checks ...func(*testing.T, *rules.Rule)) func(*testing.T, *rules.Rule) {
	return func(t *testing.T, r *rules.Rule) {
		t.Helper()
		for _, c := range checks {
			c(t, r)
		}
	}
}
