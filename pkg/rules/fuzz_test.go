package rules_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/rules"
	"github.com/tqflow/tqflow/pkg/sharedtest"
)

// sentinels are the errors Parse may wrap.
var sentinels = []error{
	rules.ErrNotRule, rules.ErrMalformed, rules.ErrHeader, rules.ErrAction, rules.ErrOptionEnd,
	rules.ErrNoSID, rules.ErrNumber, rules.ErrNoValue, rules.ErrEncoding,
}

// hazardSeeds are the grammar hazards of the ET contract, section 3.
var hazardSeeds = []string{
	base,
	"#" + base,
	"## #\t" + base,
	`#alert  http $EXTERNAL_NET any -> $HOME_NET any (msg:"ET x"; sid:2015739; rev:2;)`,
	`alert http any any -> [$HOME_NET,$HTTP_SERVERS] any (pcre:"/(%22|")org(%2e|\.)apache/Rsi"; sid:2035009;)`,
	`alert tcp any any -> any any (pcre:"/^[\r\n\s]*?\,[\x22\x27][\%\\]u"/Rsi"; sid:2017487;)`,
	`alert tcp any any -> any any (pcre:"/\/\?[0-9a-f]{60,66}[\;\d\x2c]*$/U"; sid:2013094;)`,
	`alert tcp any any -> any 445 (content:"temp\\"; nocase; sid:2025702;)`,
	`alert tcp any any -> any any (msg:"a\;b \"q\" c\\d"; content:"Indy Library)"; sid:2003446;)`,
	`alert tcp any any -> any any (pcre:/Java/\d\.\d/Vi"; sid:2002945;)`,
	`alert udp any any -> any 53 (metadata: former_category TROJAN; metadata:tag a, malware_family b; sid:2024525;)`,
	`alert tcp $HOME_NET ![80,8080] -> $EXTERNAL_NET any (flowbits:noalert; noalert; sid:2035476;)`,
	`alert tcp [$HOME_NET, [1.2.3.4, !5.6.7.8]] any <> any [1:2] (reference:url,x; reference:cve,1; sid:1; gid:3; rev:+1_0;)`,
	`alert (msg:"decoder"; sid:1; gid:116;)`,
	"alert tcp any any -> any any (msg:\"a\"; \\\n  sid:1;)\r\n",
	"alert tcp any any -> any any (sid:1\\;)",
	"alert tcp any any -> any any (sid:1;) # trailing",
	"# Copyright (c) 2003-2017, Emerging Threats",
	"",
	"\xff\xfe",
}

// FuzzParse checks that Parse and ParseFile never panic and keep their
// invariants on any input.
func FuzzParse(f *testing.F) {
	for _, s := range hazardSeeds {
		f.Add(s)
	}
	// A sample of real rules, where shared/data is at hand; without it the
	// seeds above and testdata/fuzz/FuzzParse still run.
	for _, c := range corpora {
		tarball, ok := sharedtest.Lookup("et/" + c.name + "/emerging.rules.tar.gz")
		if !ok {
			continue
		}
		dir, files := extract(f, tarball)
		for i, name := range files {
			if i%4 != 0 {
				continue
			}
			data, err := os.ReadFile(dir + "/" + name)
			if err != nil {
				f.Fatal(err)
			}
			for j, line := range strings.Split(string(data), "\n") {
				if j%500 == 0 {
					f.Add(line)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, line string) {
		checkParse(t, line)
		checkParseFile(t, line)
	})
}

func checkParse(t *testing.T, line string) {
	t.Helper()
	r, err := rules.Parse(line)
	if err != nil {
		if r != nil {
			t.Fatalf("rule %+v with error %v", r, err)
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error %v wraps no sentinel", err)
	}
	if r == nil || r.SID == 0 || r.Raw == "" || !strings.Contains(line, r.Raw) {
		t.Fatalf("bad rule %+v", r)
	}
	if !strings.HasSuffix(r.Raw, ")") || len(r.Options) == 0 {
		t.Fatalf("bad raw or options %+v", r)
	}
	if r.Enabled {
		// Commenting a rule out only changes Enabled.
		d, err := rules.Parse("#" + line)
		if err != nil || d.Enabled || d.SID != r.SID || d.Raw != r.Raw || d.Msg != r.Msg || len(d.Options) != len(r.Options) {
			t.Fatalf("commented out: %+v, %v; enabled: %+v", d, err, r)
		}
	}
}

func checkParseFile(t *testing.T, input string) {
	t.Helper()
	var p rules.Parser
	n, lines := 0, physicalLines([]byte(input))
	st, err := p.ParseFile(strings.NewReader(input), "fuzz.rules", func(r *rules.Rule, err error) error {
		if (r == nil) == (err == nil) {
			t.Fatalf("callback got rule %v and error %v", r, err)
		}
		if err != nil {
			var le *rules.LineError
			if !errors.As(err, &le) || le.Line < 1 || le.Line > lines {
				t.Fatalf("bad line error %v", err)
			}
			return nil
		}
		if r.Line < 1 || r.Line > lines || r.File != "fuzz.rules" {
			t.Fatalf("bad position %s:%d", r.File, r.Line)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	sum := st.Enabled + st.Disabled + st.Comments + st.Blank + st.Errors + st.Continued
	if st.Lines != sum || n != st.Rules() || st.Lines != lines {
		t.Fatalf("stats %+v do not add up (%d rules seen, %d lines)", st, n, lines)
	}
}
