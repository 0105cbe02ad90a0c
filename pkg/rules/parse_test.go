package rules_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/rules"
)

// base is a minimal valid rule body used to build test rows.
const base = `alert tcp $HOME_NET any -> $EXTERNAL_NET 80 (msg:"ET TEST rule"; content:"x"; sid:2000001; rev:3;)`

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		line    string
		wantErr error // nil for a rule
		check   func(t *testing.T, r *rules.Rule)
	}{
		{name: "enabled", line: base, check: func(t *testing.T, r *rules.Rule) {
			want := rules.Rule{
				Enabled: true, Action: "alert", Proto: "tcp", Src: "$HOME_NET", SrcPort: "any", Direction: "->",
				Dst: "$EXTERNAL_NET", DstPort: "80", Msg: "ET TEST rule", SID: 2000001, GID: 1, Rev: 3, Raw: base,
			}
			got := *r
			got.Options = nil
			if !equalRule(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			wantOpts := []rules.Option{{"msg", `"ET TEST rule"`}, {"content", `"x"`}, {"sid", "2000001"}, {"rev", "3"}}
			if !slices.Equal(r.Options, wantOpts) {
				t.Errorf("options %q, want %q", r.Options, wantOpts)
			}
		}},
		{name: "disabled", line: "#" + base, check: disabled(base)},
		{name: "disabled with hashes and spaces", line: "## # \t" + base, check: disabled(base)},
		{name: "leading and trailing space", line: "  \t" + base + " \r\n", check: enabledRaw(base)},
		{name: "double space after action (sid 2015739)", line: "#alert  http $EXTERNAL_NET any -> $HOME_NET any (msg:\"a\"; sid:2015739; rev:2;)", check: func(t *testing.T, r *rules.Rule) {
			if r.Enabled || r.Proto != "http" || r.Src != "$EXTERNAL_NET" {
				t.Errorf("got enabled %v proto %q src %q", r.Enabled, r.Proto, r.Src)
			}
		}},
		{name: "tabs in header", line: "alert\ttcp any\tany -> any any (sid:1;)", check: func(t *testing.T, r *rules.Rule) {
			if r.Proto != "tcp" || r.SrcPort != "any" || r.DstPort != "any" {
				t.Errorf("got %+v", r)
			}
		}},
		{name: "bracket lists with spaces, nesting and negation", line: "alert tcp [$HOME_NET, [10.0.0.0/8, !10.1.0.0/16]] ![80, 8080] <> $EXTERNAL_NET [1:1024] (sid:1;)", check: func(t *testing.T, r *rules.Rule) {
			if r.Src != "[$HOME_NET, [10.0.0.0/8, !10.1.0.0/16]]" || r.SrcPort != "![80, 8080]" || r.Direction != "<>" || r.DstPort != "[1:1024]" {
				t.Errorf("got src %q sport %q dir %q dport %q", r.Src, r.SrcPort, r.Direction, r.DstPort)
			}
		}},
		{name: "decoder rule with one-word header", line: `alert (msg:"SNORT decoder"; sid:1; gid:116; rev:1;)`, check: func(t *testing.T, r *rules.Rule) {
			if r.Action != "alert" || r.Proto != "" || r.GID != 116 {
				t.Errorf("got %+v", r)
			}
		}},
		{name: "msg escapes are undone as Suricata does", line: `alert tcp any any -> any any (msg:"a\;b \"q\" c\\d e\:f \x"; sid:1;)`, check: func(t *testing.T, r *rules.Rule) {
			if want := `a;b "q" c\d e:f x`; r.Msg != want {
				t.Errorf("msg %q, want %q", r.Msg, want)
			}
			if r.Options[0].Value != `"a\;b \"q\" c\\d e\:f \x"` {
				t.Errorf("raw msg option %q", r.Options[0].Value)
			}
			if want := `a\;b \"q\" c\\d e\:f \x`; r.RawMsg() != want {
				t.Errorf("RawMsg %q, want %q", r.RawMsg(), want)
			}
		}},
		// Suricata's DetectMsgParseTest02 (src/detect-msg.c) expects
		// "\w\x\y\'" to read "wxy'"; the tail of its rule ("\\;\:") is
		// left out because this parser ends an option at "\\;".
		{name: "Suricata's msg unit test", line: `alert tcp any any -> any any (msg:"msg escape tests \w\x\y\'\"\:"; sid:100;)`, check: msg(`msg escape tests wxy'":`)},
		{name: `escapes seen in ET msgs: \/ \d \s \w`, line: `alert http any any -> any any (msg:"ET USER_AGENTS Downloader User-Agent (AutoDL\/1.0) (^IE[\d\s]) (c \windows)"; sid:1;)`, check: msg(`ET USER_AGENTS Downloader User-Agent (AutoDL/1.0) (^IE[ds]) (c windows)`)},
		{name: "msg ending in a lone backslash drops it", line: `alert tcp any any -> any any (msg:a\ ; sid:1;)`, check: msg(`a`)},
		{name: "backslash before a multi-byte character", line: "alert tcp any any -> any any (msg:\"caf\\\u00e9\"; sid:1;)", check: msg("caf\u00e9")},
		{name: "msg without quotes", line: `alert tcp any any -> any any (msg: plain text ; sid:1;)`, check: msg("plain text")},
		{name: "msg lone quote", line: `alert tcp any any -> any any (msg:"; sid:1;)`, check: msg("")},
		{name: "no msg", line: `alert tcp any any -> any any (sid:1;)`, check: msg("")},
		{name: "escaped semicolon in pcre (sid 2013094)", line: `alert tcp any any -> any any (pcre:"/\/\?[0-9a-f]{60,66}[\;\d\x2c]*$/U"; sid:2013094;)`, check: option("pcre", `"/\/\?[0-9a-f]{60,66}[\;\d\x2c]*$/U"`)},
		{name: "unescaped quote in pcre (sid 2035009)", line: `alert http any any -> any any (pcre:"/(%22|")org(%2e|\.)apache/Rsi"; content:"a;b"; sid:2035009;)`, check: func(t *testing.T, r *rules.Rule) {
			// Options end at ';' even inside quotes, as in suricata-update.
			want := []rules.Option{{"pcre", `"/(%22|")org(%2e|\.)apache/Rsi"`}, {"content", `"a`}, {`b"`, ""}, {"sid", "2035009"}}
			if !slices.Equal(r.Options, want) {
				t.Errorf("options %q, want %q", r.Options, want)
			}
		}},
		{name: "escaped backslash before closing quote (sid 2025702)", line: `alert tcp any any -> any 445 (content:"temp\\"; nocase; sid:2025702;)`, check: func(t *testing.T, r *rules.Rule) {
			want := []rules.Option{{"content", `"temp\\"`}, {"nocase", ""}, {"sid", "2025702"}}
			if !slices.Equal(r.Options, want) {
				t.Errorf("options %q, want %q", r.Options, want)
			}
		}},
		{name: "escaped backslash before the terminator ends the option", line: `alert tcp any any -> any any (content:"a"; pcre:/x\\; sid:1;)`, check: option("pcre", `/x\\`)},
		{name: "parentheses inside options (sid 2003446)", line: `alert tcp any any -> any any (msg:"UA (Indy)"; content:"Indy Library)"; sid:2003446;)`, check: func(t *testing.T, r *rules.Rule) {
			if r.Msg != "UA (Indy)" || r.Options[1].Value != `"Indy Library)"` {
				t.Errorf("got msg %q options %q", r.Msg, r.Options)
			}
		}},
		{name: "missing opening quote is kept raw (sid 2002945)", line: `alert tcp any any -> any any (content:"Java/"; pcre:/Java/\d\.\d/Vi"; sid:2002945; rev:9;)`, check: option("pcre", `/Java/\d\.\d/Vi"`)},
		{name: "metadata repeated and split (sid 2024525)", line: `alert udp any any -> any 53 (metadata: former_category TROJAN; metadata:tag Ransomware, malware_family Crypton,malware_family  Nemesis , flag,; sid:2024525;)`, check: func(t *testing.T, r *rules.Rule) {
			want := []rules.KV{{"former_category", "TROJAN"}, {"tag", "Ransomware"}, {"malware_family", "Crypton"}, {"malware_family", "Nemesis"}, {"flag", ""}}
			if !slices.Equal(r.Metadata, want) {
				t.Errorf("metadata %q, want %q", r.Metadata, want)
			}
			if got := r.MetadataValues("malware_family"); !slices.Equal(got, []string{"Crypton", "Nemesis"}) {
				t.Errorf("MetadataValues = %q", got)
			}
		}},
		{name: "references", line: `alert tcp any any -> any any (reference:url,example.com/a,b; reference: cve , 2020-1234 ; reference:nocomma; sid:1;)`, check: func(t *testing.T, r *rules.Rule) {
			want := []rules.Reference{{"url", "example.com/a,b"}, {"cve", "2020-1234"}, {"nocomma", ""}}
			if !slices.Equal(r.References, want) {
				t.Errorf("references %q, want %q", r.References, want)
			}
		}},
		{name: "flowbits noalert (sid 2001622)", line: `alert tcp any any -> any any (flowbits:noalert; flowbits:set,winhlp32; sid:2001622;)`, check: func(t *testing.T, r *rules.Rule) {
			if !r.NoAlert || !slices.Equal(r.Flowbits, []string{"noalert", "set,winhlp32"}) {
				t.Errorf("noalert %v flowbits %q", r.NoAlert, r.Flowbits)
			}
		}},
		{name: "bare noalert (sid 2033751)", line: `alert http any any -> any any (xbits:set,x,track ip_src; noalert; sid:2033751;)`, check: func(t *testing.T, r *rules.Rule) {
			if !r.NoAlert {
				t.Error("NoAlert false")
			}
		}},
		{name: "flowbits set is not noalert", line: `alert tcp any any -> any any (flowbits:set,noalert_x; sid:1;)`, check: func(t *testing.T, r *rules.Rule) {
			if r.NoAlert {
				t.Error("NoAlert true")
			}
		}},
		{name: "classtype and priority", line: `alert tcp any any -> any any (classtype:trojan-activity; priority:3; sid:1;)`, check: func(t *testing.T, r *rules.Rule) {
			if r.Classtype != "trojan-activity" || r.Priority != 3 {
				t.Errorf("classtype %q priority %d", r.Classtype, r.Priority)
			}
		}},
		{name: "non-integer priority is ignored", line: `alert tcp any any -> any any (priority:high; sid:1;)`, check: func(t *testing.T, r *rules.Rule) {
			if r.Priority != 0 {
				t.Errorf("priority %d", r.Priority)
			}
		}},
		{name: "numbers like Python int", line: `alert tcp any any -> any any (sid: +2_000_001 ; rev:007; gid:0;)`, check: func(t *testing.T, r *rules.Rule) {
			if r.SID != 2000001 || r.Rev != 7 || r.GID != 0 {
				t.Errorf("sid %d rev %d gid %d", r.SID, r.Rev, r.GID)
			}
		}},
		{name: "last sid wins", line: `alert tcp any any -> any any (sid:1; sid:2;)`, check: func(t *testing.T, r *rules.Rule) {
			if r.SID != 2 {
				t.Errorf("sid %d", r.SID)
			}
		}},
		{name: "empty options and spaces", line: `alert tcp any any -> any any ( ;msg:"m" ;; sid:1 ; )`, check: msg("m")},
		{name: "sdrop and reject actions", line: `sdrop tcp any any -> any any (sid:1;)`, check: func(t *testing.T, r *rules.Rule) {
			if r.Action != "sdrop" {
				t.Errorf("action %q", r.Action)
			}
		}},
		{name: "extra header fields are ignored", line: `alert tcp any any -> any any extra (sid:1;)`, check: func(t *testing.T, r *rules.Rule) {
			if r.DstPort != "any" {
				t.Errorf("dport %q", r.DstPort)
			}
		}},
		{name: "unicode white space", line: "\u00a0alert tcp any any -> any any (msg:\"\u3000x\u3000\"; sid:1;)\u2003", check: msg("\u3000x\u3000")},

		{name: "blank", line: " \t ", wantErr: rules.ErrNotRule},
		{name: "empty", line: "", wantErr: rules.ErrNotRule},
		{name: "plain comment", line: "# Copyright (c) 2003-2017, Emerging Threats", wantErr: rules.ErrNotRule},
		{name: "comment ending in parenthesis", line: "# see the docs (section 2)", wantErr: rules.ErrNotRule},
		{name: "commented rule with trailing text", line: "#" + base + " # note", wantErr: rules.ErrNotRule},
		{name: "commented unknown action", line: "#rejectsrc tcp any any -> any any (sid:1;)", wantErr: rules.ErrNotRule},
		{name: "commented short header", line: "#alert tcp any any -> any (sid:1;)", wantErr: rules.ErrNotRule},
		{name: "commented rule without sid is an error", line: `#alert tcp any any -> any any (msg:"x";)`, wantErr: rules.ErrNoSID},

		{name: "garbage", line: "hello world", wantErr: rules.ErrMalformed},
		{name: "trailing text after options", line: base + " # note", wantErr: rules.ErrMalformed},
		{name: "no options", line: "alert tcp any any -> any any", wantErr: rules.ErrMalformed},
		{name: "only options", line: "(sid:1;)", wantErr: rules.ErrMalformed},
		{name: "parenthesis in header", line: "alert tcp a) any -> any any (sid:1;)", wantErr: rules.ErrMalformed},
		{name: "short header", line: "alert tcp any any -> any (sid:1;)", wantErr: rules.ErrHeader},
		{name: "unclosed list", line: "alert tcp [1.2.3.4,5.6.7.8 any -> any any (sid:1;)", wantErr: rules.ErrHeader},
		{name: "unknown action", line: "rejectsrc tcp any any -> any any (sid:1;)", wantErr: rules.ErrAction},
		{name: "missing sid", line: `alert tcp any any -> any any (msg:"x"; rev:1;)`, wantErr: rules.ErrNoSID},
		{name: "sid 0", line: `alert tcp any any -> any any (sid:0;)`, wantErr: rules.ErrNoSID},
		{name: "missing final semicolon", line: `alert tcp any any -> any any (msg:"x"; sid:1)`, wantErr: rules.ErrOptionEnd},
		{name: "escaped final semicolon", line: `alert tcp any any -> any any (sid:1\;)`, wantErr: rules.ErrOptionEnd},
		{name: "bad sid", line: `alert tcp any any -> any any (sid:12a;)`, wantErr: rules.ErrNumber},
		{name: "sid without value", line: `alert tcp any any -> any any (sid;)`, wantErr: rules.ErrNumber},
		{name: "empty rev", line: `alert tcp any any -> any any (sid:1; rev:;)`, wantErr: rules.ErrNumber},
		{name: "sid overflow", line: `alert tcp any any -> any any (sid:99999999999999999999;)`, wantErr: rules.ErrNumber},
		{name: "underscore at the end", line: `alert tcp any any -> any any (sid:1_;)`, wantErr: rules.ErrNumber},
		{name: "metadata without value", line: `alert tcp any any -> any any (metadata; sid:1;)`, wantErr: rules.ErrNoValue},
		{name: "invalid UTF-8", line: "alert tcp any any -> any any (msg:\"\xff\"; sid:1;)", wantErr: rules.ErrEncoding},
	}
	tests = append(tests, crasherRows...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := rules.Parse(tt.line)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || r != nil {
					t.Fatalf("Parse = %+v, %v; want error %v", r, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r.SID == 0 || !strings.Contains(tt.line, r.Raw) {
				t.Errorf("sid %d raw %q", r.SID, r.Raw)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func equalRule(a, b rules.Rule) bool {
	return a.Enabled == b.Enabled && a.Action == b.Action && a.Proto == b.Proto && a.Src == b.Src &&
		a.SrcPort == b.SrcPort && a.Direction == b.Direction && a.Dst == b.Dst && a.DstPort == b.DstPort &&
		a.Msg == b.Msg && a.SID == b.SID && a.GID == b.GID && a.Rev == b.Rev && a.Classtype == b.Classtype &&
		a.Priority == b.Priority && slices.Equal(a.References, b.References) && slices.Equal(a.Metadata, b.Metadata) &&
		slices.Equal(a.Flowbits, b.Flowbits) && a.NoAlert == b.NoAlert && slices.Equal(a.Options, b.Options) &&
		a.Raw == b.Raw && a.File == b.File && a.Line == b.Line
}

func disabled(raw string) func(*testing.T, *rules.Rule) {
	return func(t *testing.T, r *rules.Rule) {
		t.Helper()
		if r.Enabled || r.Raw != raw || r.SID != 2000001 {
			t.Errorf("enabled %v raw %q sid %d", r.Enabled, r.Raw, r.SID)
		}
	}
}

func enabledRaw(raw string) func(*testing.T, *rules.Rule) {
	return func(t *testing.T, r *rules.Rule) {
		t.Helper()
		if !r.Enabled || r.Raw != raw {
			t.Errorf("enabled %v raw %q", r.Enabled, r.Raw)
		}
	}
}

func msg(want string) func(*testing.T, *rules.Rule) {
	return func(t *testing.T, r *rules.Rule) {
		t.Helper()
		if r.Msg != want {
			t.Errorf("msg %q, want %q", r.Msg, want)
		}
	}
}

// option checks that the rule has an option name with the value want.
func option(name, want string) func(*testing.T, *rules.Rule) {
	return func(t *testing.T, r *rules.Rule) {
		t.Helper()
		for _, o := range r.Options {
			if o.Name == name {
				if o.Value != want {
					t.Errorf("%s = %q, want %q", name, o.Value, want)
				}
				return
			}
		}
		t.Errorf("no %s option in %q", name, r.Options)
	}
}
