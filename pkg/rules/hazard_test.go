package rules_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tqflow/tqflow/pkg/rules"
)

// corpusRules caches the rules of each saved corpus by sid.
var corpusRules sync.Map // corpus name -> func() map[int]*rules.Rule

func rulesBySID(t *testing.T, c corpus) map[int]*rules.Rule {
	t.Helper()
	tarball := c.tarball(t)
	f, _ := corpusRules.LoadOrStore(c.name, sync.OnceValue(func() map[int]*rules.Rule {
		m := map[int]*rules.Rule{}
		_ = rules.Walk(tarball, func(r *rules.Rule, err error) error {
			if err == nil {
				m[r.SID] = r
			}
			return nil
		})
		return m
	}))
	return f.(func() map[int]*rules.Rule)()
}

func corpusByName(t *testing.T, name string) corpus {
	t.Helper()
	for _, c := range corpora {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("unknown corpus %q", name)
	return corpus{}
}

func optionValue(r *rules.Rule, name string, nth int) string {
	for _, o := range r.Options {
		if o.Name == name {
			if nth == 0 {
				return o.Value
			}
			nth--
		}
	}
	return "<none>"
}

// TestHazardSIDs checks the real rules the ET contract (section 3.2) names
// as grammar hazards.
func TestHazardSIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		corpus string
		sid    int
		hazard string
		check  func(r *rules.Rule) bool
	}{
		{"suricata-5.0-2025", 2035009, "unescaped quote inside pcre, enabled", func(r *rules.Rule) bool {
			return r.Enabled && r.Dst == "[$HOME_NET,$HTTP_SERVERS]" &&
				strings.Contains(optionValue(r, "pcre", 1), `(%22|")org(%2e|\.)apache`) && strings.HasSuffix(optionValue(r, "pcre", 1), `/Rsi"`)
		}},
		{"suricata-2017", 2017487, "unescaped quote inside pcre, disabled", func(r *rules.Rule) bool {
			return !r.Enabled && strings.HasSuffix(optionValue(r, "pcre", 0), `[\%\\]u"/Rsi"`)
		}},
		{"suricata-5.0-2025", 2010376, "unescaped quote inside pcre, deleted", func(r *rules.Rule) bool {
			return !r.Enabled && strings.HasPrefix(optionValue(r, "pcre", 0), `"/filename\s*=\s*"WU_Details_`) && r.File == "rules/emerging-deleted.rules"
		}},
		{"suricata-5.0-2025", 2013094, "escaped ; inside pcre", func(r *rules.Rule) bool {
			return strings.Contains(optionValue(r, "pcre", 0), `[\;\d\x2c]*$/U"`) && r.Classtype == "exploit-kit" && r.Priority == 1 // priority from classification.config
		}},
		{"snort-2.9.0-2020", 2025702, `escaped backslash before the closing quote`, func(r *rules.Rule) bool {
			return optionValue(r, "content", 1) == `"temp\\"` && r.Options[slices.IndexFunc(r.Options, func(o rules.Option) bool { return o.Value == `"temp\\"` })+1].Name == "nocase"
		}},
		{"suricata-2017", 2003446, "parenthesis inside content", func(r *rules.Rule) bool {
			return slices.Contains(r.Options, rules.Option{Name: "content", Value: `"Indy Library)"`}) && r.Msg == "ET MALWARE Adware Command Client Checkin"
		}},
		{"suricata-2017", 2002945, "malformed pcre missing its opening quote, kept raw", func(r *rules.Rule) bool {
			return r.Enabled && optionValue(r, "pcre", 0) == `/Java/\d\.\d/Vi"`
		}},
		{"snort-2.9.0-2020", 2024525, "two metadata options merged", func(r *rules.Rule) bool {
			return r.Metadata[0] == rules.KV{Key: "former_category", Value: "TROJAN"} &&
				slices.Equal(r.MetadataValues("malware_family"), []string{"Crypton", "Nemesis"})
		}},
		{"suricata-5.0-2025", 2035476, "negated port list", func(r *rules.Rule) bool {
			return r.SrcPort == "![80,8080]" && r.Src == "$HOME_NET"
		}},
		{"suricata-5.0-2025", 2001622, "flowbits:noalert", func(r *rules.Rule) bool {
			return r.NoAlert && slices.Contains(r.Flowbits, "noalert") && slices.Contains(r.Flowbits, "set,winhlp32")
		}},
		{"suricata-5.0-2025", 2033751, "bare noalert", func(r *rules.Rule) bool {
			return r.NoAlert && slices.Contains(r.Options, rules.Option{Name: "noalert"})
		}},
		{"suricata-5.0-2025", 2015739, "double space after the action", func(r *rules.Rule) bool {
			return !r.Enabled && r.Action == "alert" && r.Proto == "http" && strings.HasPrefix(r.Raw, "alert  http ")
		}},
		{"suricata-2017", 2015739, "double space after the action", func(r *rules.Rule) bool {
			return !r.Enabled && r.Proto == "http"
		}},
		{"suricata-5.0-2025", 2039749, `backslash before an ordinary letter in msg (Suricata drops it)`, func(r *rules.Rule) bool {
			return r.Msg == "ET RETIRED WinGOMonitor.go CnC Checkin" && r.RawMsg() == `ET RETIRED WinGO\Monitor.go CnC Checkin`
		}},
		{"suricata-5.0-2025", 2008458, `escaped '/' in msg`, func(r *rules.Rule) bool {
			return r.Msg == "ET USER_AGENTS Downloader User-Agent (AutoDL/1.0)"
		}},
		{"suricata-5.0-2025", 2011334, `escaped backslashes in msg`, func(r *rules.Rule) bool {
			return strings.Contains(r.Msg, `(C\WINDOWS\system32\NetLogom.exe)`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.corpus+"/"+tt.hazard, func(t *testing.T) {
			t.Parallel()
			r := rulesBySID(t, corpusByName(t, tt.corpus))[tt.sid]
			if r == nil {
				t.Fatalf("sid %d not parsed", tt.sid)
			}
			if r.SID != tt.sid || r.GID != 1 || r.Rev == 0 || !tt.check(r) {
				t.Errorf("sid %d: unexpected parse %+v", tt.sid, r)
			}
		})
	}
}
