package et_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/tqflow/tqflow/pkg/et"
)

func TestConfigEnvDefaults(t *testing.T) {
	t.Parallel()
	var cfg et.Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	want := et.Config{
		Sources:  []string{"open"},
		Flavor:   "suricata-7.0.3",
		OpenURL:  et.DefaultOpenURL,
		ProURL:   et.DefaultProURL,
		BlockURL: et.DefaultBlockURL,
		Timeout:  5 * time.Minute,
		MaxSize:  et.DefaultMaxSize,
	}
	if !slices.Equal(cfg.Sources, want.Sources) || cfg.Flavor != want.Flavor || cfg.OpenURL != want.OpenURL ||
		cfg.ProURL != want.ProURL || cfg.BlockURL != want.BlockURL || cfg.Timeout != want.Timeout || cfg.MaxSize != want.MaxSize {
		t.Errorf("defaults = %+v, want %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	if err := (et.Config{}).Validate(); err != nil {
		t.Errorf("the zero Config must validate (zero fields are defaults): %v", err)
	}

	var cfg2 et.Config
	err := env.ParseWithOptions(&cfg2, env.Options{Environment: map[string]string{
		"SOURCES": "open,pro,block:emerging-drop.rules", "FLAVOR": "snort-2.9.0", "OINKCODE": "abc123",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg2.Sources) != 3 || cfg2.Oinkcode.Reveal() != "abc123" {
		t.Errorf("parsed %+v", cfg2)
	}
	if err := cfg2.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  et.Config
		want []string // substrings of the error; none means valid
		hide string   // must not appear in the error
	}{
		{name: "zero"},
		{name: "pro with code", cfg: et.Config{Sources: []string{"pro"}, Oinkcode: "0123456789abcdef"}},
		{name: "all sources", cfg: et.Config{Sources: []string{"open", "open-nogpl", "block", "block:x.rules"}}},
		{name: "unknown source", cfg: et.Config{Sources: []string{"opne"}}, want: []string{`ET_SOURCES: invalid source: "opne"`}},
		{name: "block path", cfg: et.Config{Sources: []string{"block:../etc/passwd"}}, want: []string{"ET_SOURCES", "not a plain file name"}},
		{name: "pro without code", cfg: et.Config{Sources: []string{"open", "pro"}}, want: []string{"ET_OINKCODE: required for the pro source"}},
		{
			name: "code with a slash", cfg: et.Config{Sources: []string{"pro"}, Oinkcode: "SECRET/123"},
			want: []string{"ET_OINKCODE: want letters"}, hide: "SECRET",
		},
		{name: "flavour", cfg: et.Config{Flavor: "suricata-5"}, want: []string{`ET_FLAVOR is "suricata-5"`}},
		{name: "both IP lists", cfg: et.Config{BlockLists: []string{"fwrules/emerging-Block-IPs.txt", "blockrules/compromised-ips.txt"}}},
		{name: "IP list given as rules", cfg: et.Config{Sources: []string{"block:compromised-ips.txt"}},
			want: []string{"ET_SOURCES", "block:compromised-ips.txt is not a rules file", "ET_BLOCK_LISTS as blockrules/compromised-ips.txt"}},
		{name: "rules given as an IP list", cfg: et.Config{BlockLists: []string{"blockrules/emerging-drop.rules"}},
			want: []string{"ET_BLOCK_LISTS", "blockrules/emerging-drop.rules is a rules file, not an IP list", "block:emerging-drop.rules in ET_SOURCES"}},
		{name: "firewall script given as an IP list", cfg: et.Config{BlockLists: []string{"fwrules/emerging-IPTABLES-ALL.rules"}},
			want: []string{"ET_BLOCK_LISTS", "firewall script", "fwrules/emerging-Block-IPs.txt"}},
		{name: "IP list outside the list directories", cfg: et.Config{BlockLists: []string{"open/emerging-Block-IPs.txt"}},
			want: []string{"ET_BLOCK_LISTS", "want fwrules/<file>.txt or blockrules/<file>.txt"}},
		{name: "snort five components", cfg: et.Config{Flavor: "snort-2.9.16.1.1"}, want: []string{`ET_FLAVOR is "snort-2.9.16.1.1"`, "as pulledpork does"}},
		{name: "ftp url", cfg: et.Config{OpenURL: "ftp://mirror"}, want: []string{"ET_OPEN_URL: ftp://mirror: want an http or https URL"}},
		{name: "no host", cfg: et.Config{ProURL: "https://"}, want: []string{"ET_PRO_URL", "no host"}},
		{name: "query", cfg: et.Config{BlockURL: "https://h/?a=b"}, want: []string{"ET_BLOCK_URL", "no query"}},
		{
			name: "password in url", cfg: et.Config{ProURL: "ftp://user:PASSWORD9@mirror"},
			want: []string{"ET_PRO_URL: ftp://user:xxxxx@mirror"}, hide: "PASSWORD9",
		},
		{name: "bad url", cfg: et.Config{OpenURL: "http://[::1"}, want: []string{"ET_OPEN_URL: not a URL"}},
		{
			name: "plain http to a mirror", cfg: et.Config{ProURL: "http://user:PASSWORD9@mirror.example"},
			want: []string{"ET_PRO_URL: plain http", "ET_ALLOW_HTTP=true"}, hide: "PASSWORD9",
		},
		{name: "plain http allowed", cfg: et.Config{OpenURL: "http://sandbox:18083", AllowHTTP: true}},
		{name: "plain http to the loopback", cfg: et.Config{OpenURL: "http://127.0.0.1:18083"}},
		{name: "insecure with a CA file", cfg: et.Config{Insecure: true, CAFile: "x.pem"}, want: []string{"ET_INSECURE and ET_CA_FILE"}},
		{name: "timeout", cfg: et.Config{Timeout: -time.Second}, want: []string{"ET_TIMEOUT is -1s"}},
		{name: "max size", cfg: et.Config{MaxSize: -1}, want: []string{"ET_MAX_SIZE is -1"}},
		{name: "ca file", cfg: et.Config{CAFile: filepath.Join(t.TempDir(), "none.pem")}, want: []string{"ET_CA_FILE"}},
		{
			name: "every problem at once",
			cfg: et.Config{
				Sources: []string{"x", "pro"}, Flavor: "bro", OpenURL: "ftp://a", ProURL: "ftp://b", BlockURL: "ftp://c",
				Timeout: -1, MaxSize: -1,
			},
			want: []string{"ET_SOURCES", "ET_OINKCODE", "ET_FLAVOR", "ET_OPEN_URL", "ET_PRO_URL", "ET_BLOCK_URL", "ET_TIMEOUT", "ET_MAX_SIZE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
			if tt.hide != "" && strings.Contains(err.Error(), tt.hide) {
				t.Errorf("Validate = %q shows a secret", err)
			}
			if _, nerr := et.New(tt.cfg); nerr == nil {
				t.Error("New accepted a config Validate rejects")
			}
		})
	}
}

func TestFlavours(t *testing.T) {
	t.Parallel()
	tests := []struct {
		flavor string
		ok     bool
		engine et.Engine
	}{
		{"suricata-5.0", true, et.EngineSuricata},
		{"suricata-7.0.3", true, et.EngineSuricata},
		{"suricata-7.0.8", true, et.EngineSuricata},
		{"suricata-8.0", true, et.EngineSuricata},
		{"suricata", true, et.EngineSuricata},
		{"snort-2.9.0", true, et.EngineSnort},
		{"snort-edge", true, et.EngineSnort},
		{"snort-3.0.0", true, et.EngineSnort},
		{"suricata-5", false, ""},
		{"Suricata-5.0", false, ""},
		{"snort-2.9.16.1", true, et.EngineSnort},
		{"snort-2.9.7.0", true, et.EngineSnort},
		{"snort-2.9.7", true, et.EngineSnort},
		{"suricata-7.0.6", true, et.EngineSuricata},
		{"snort-2.9", false, ""},
		{"snort-2.9.7.0.1", false, ""},
		{"suricata-7.0.6.1", false, ""},
		{"suricata-5.0/../x", false, ""},
		{"suricata-5.0-enhanced", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.flavor, func(t *testing.T) {
			t.Parallel()
			cfg := et.Config{Flavor: tt.flavor}
			err := cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%q) = %v, want ok %v", tt.flavor, err, tt.ok)
			}
			if tt.ok && cfg.Engine() != tt.engine {
				t.Errorf("Engine = %q, want %q", cfg.Engine(), tt.engine)
			}
		})
	}
}

func TestSources(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     et.Config
		want    []et.Source
		notWant et.Source
	}{
		{"default", et.Config{}, []et.Source{et.SourceOpen}, ""},
		{
			"suricata block", et.Config{Sources: []string{"block", " open "}},
			[]et.Source{et.SourceOpen, et.BlockFile("emerging-drop.suricata.rules"), et.BlockFile("threatview_CS_c2.suricata.rules")},
			et.BlockFile("emerging-drop.rules"),
		},
		{
			"snort block", et.Config{Flavor: "snort-2.9.0", Sources: []string{"block"}},
			[]et.Source{et.BlockFile("emerging-drop.rules"), et.BlockFile("emerging-tor.rules")},
			et.BlockFile("emerging-drop.suricata.rules"),
		},
		{
			"duplicates", et.Config{Sources: []string{"block", "block:emerging-tor.suricata.rules", "open", "open"}},
			[]et.Source{et.SourceOpen, et.BlockFile("emerging-tor.suricata.rules")}, "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := et.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Sources()
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("Sources() = %v, want %s in it", got, w)
				}
			}
			if tt.notWant != "" && slices.Contains(got, tt.notWant) {
				t.Errorf("Sources() = %v, want no %s", got, tt.notWant)
			}
			if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
				t.Errorf("Sources() = %v, want sorted and unique", got)
			}
		})
	}
}

func TestParseSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want et.Source
		ok   bool
	}{
		{"open", et.SourceOpen, true},
		{"open-nogpl", et.SourceOpenNoGPL, true},
		{"pro", et.SourcePro, true},
		{"block", et.SourceBlock, true},
		{"block:emerging-drop.rules", et.BlockFile("emerging-drop.rules"), true},
		{"block:", "", false},
		{"block:a/b", "", false},
		{"etpro", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := et.ParseSource(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParseSource(%q) = %q, %v", tt.in, got, err)
			}
			if !tt.ok && !errors.Is(err, et.ErrInvalidSource) {
				t.Errorf("err = %v, want ErrInvalidSource", err)
			}
		})
	}
	if f, ok := et.BlockFile("x.rules").File(); !ok || f != "x.rules" {
		t.Errorf("File() = %q, %v", f, ok)
	}
	if _, ok := et.SourceOpen.File(); ok {
		t.Error("SourceOpen.File() reported a file")
	}
}

func TestParseMD5(t *testing.T) {
	t.Parallel()
	const sum = "a8bdb92901bbeaec883290aa6b4482b6"
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"plain", sum, true},
		{"newline", sum + "\n", true},
		{"crlf and spaces", "  " + sum + " \r\n", true},
		{"upper case", strings.ToUpper(sum), true},
		{"md5sum form", sum + "  emerging.rules.tar.gz\n", true},
		{"md5sum binary form", sum + " *emerging.rules.tar.gz\n", true},
		{"bsd form", "MD5 (emerging.rules.tar.gz) = " + sum + "\n", true},
		{"empty", "", false},
		{"short", sum[:31], false},
		{"not hex", "z" + sum[1:], false},
		{"html", "<html><body>Not Found</body></html>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := et.ParseMD5([]byte(tt.in))
			if !tt.ok {
				if !errors.Is(err, et.ErrBadMD5File) {
					t.Errorf("ParseMD5(%q) = %q, %v; want ErrBadMD5File", tt.in, got, err)
				}
				return
			}
			if err != nil || got != sum {
				t.Errorf("ParseMD5(%q) = %q, %v; want %s", tt.in, got, err, sum)
			}
		})
	}
}

// TestRequestFlavor checks the flavour directory asked for: Suricata
// versions as suricata-update sends them (the full version, mapped by ET),
// Snort versions as pulledpork rewrites them (s/(?<=\d\.\d\.\d)\.\d//).
func TestRequestFlavor(t *testing.T) {
	t.Parallel()
	tests := []struct{ flavor, want string }{
		{"suricata-7.0.6", "suricata-7.0.6"},
		{"suricata-7.0.3", "suricata-7.0.3"},
		{"suricata-5.0", "suricata-5.0"},
		{"suricata", "suricata"},
		{"snort-2.9.7.0", "snort-2.9.7"},
		{"snort-2.9.8.3", "snort-2.9.8"},
		{"snort-2.9.16.1", "snort-2.9.16"},
		{"snort-2.9.0", "snort-2.9.0"},
		{"snort-edge", "snort-edge"},
	}
	for _, tt := range tests {
		t.Run(tt.flavor, func(t *testing.T) {
			t.Parallel()
			if got := et.RequestFlavor(tt.flavor); got != tt.want {
				t.Errorf("RequestFlavor(%q) = %q, want %q", tt.flavor, got, tt.want)
			}
		})
	}
}
