package ctr_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/ctr"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	var c ctr.Config
	err := config.Parse(&c, map[string]string{"CLIENT_ID": "client-1", "CLIENT_PASSWORD": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "us" || c.Timeout != 90*time.Second || c.BatchSize != 50 {
		t.Errorf("defaults = %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := ctr.Config{ClientID: "client-1", ClientPassword: "secret-pw"}
	tests := []struct {
		name  string
		mod   func(*ctr.Config)
		wants []string // substrings, one per problem
	}{
		{"zero values get defaults", func(*ctr.Config) {}, nil},
		{"eu", func(c *ctr.Config) { c.Region = "EU" }, nil},
		{"apjc with base url", func(c *ctr.Config) { c.Region = "apjc"; c.BaseURL = "http://ctrsim:8080/"; c.AllowHTTP = true }, nil},
		{"plain http to another host", func(c *ctr.Config) { c.BaseURL = "http://ctrsim:8080/" }, []string{"BASE_URL: plain http", "ALLOW_HTTP=true"}},
		{"plain http to the loopback", func(c *ctr.Config) { c.BaseURL = "http://127.0.0.1:8080/" }, nil},
		{"insecure with a CA file", func(c *ctr.Config) { c.Insecure = true; c.CAFile = "/etc/ca.pem" }, []string{"INSECURE and CA_FILE"}},
		{"bad region", func(c *ctr.Config) { c.Region = "nam" }, []string{`REGION "nam"`, "us, eu, apjc"}},
		{"every problem at once", func(c *ctr.Config) {
			*c = ctr.Config{Region: "mars", BaseURL: "ftp://u:p@host/x?y", Timeout: -1, BatchSize: 1001}
		}, []string{"REGION", "CLIENT_ID", "CLIENT_PASSWORD", "BASE_URL scheme", "BASE_URL must not carry", "BASE_URL must not have a query", "TIMEOUT", "BATCH_SIZE 1001"}},
		{"batch size negative", func(c *ctr.Config) { c.BatchSize = -5 }, []string{"BATCH_SIZE -5"}},
		{"base url without host", func(c *ctr.Config) { c.BaseURL = "http://" }, []string{"BASE_URL has no host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tt.mod(&c)
			err := c.Validate()
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate = nil, want errors")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Error("the password leaked into the error")
			}
			if _, err := ctr.New(c); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestRegionURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		region, want string
		err          bool
	}{
		{"", "https://visibility.amp.cisco.com", false},
		{"us", "https://visibility.amp.cisco.com", false},
		{"US", "https://visibility.amp.cisco.com", false},
		{"eu", "https://visibility.eu.amp.cisco.com", false},
		{"apjc", "https://visibility.apjc.amp.cisco.com", false},
		{"nam", "", true},
		{"eu.", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.region, func(t *testing.T) {
			t.Parallel()
			got, err := ctr.RegionURL(tt.region)
			if got != tt.want || (err != nil) != tt.err {
				t.Errorf("RegionURL(%q) = %q, %v", tt.region, got, err)
			}
			if tt.err && !errors.Is(err, ctr.ErrRegion) {
				t.Errorf("error %v is not ErrRegion", err)
			}
		})
	}
}

func TestTypeFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tq, want string
		ok       bool
	}{
		{"IP Address", "ip", true},
		{"ip address", "ip", true},
		{"IPv6 Address", "ipv6", true},
		{"FQDN", "domain", true},
		{"Domain", "domain", true},
		{"URL", "url", true},
		{"SHA-256", "sha256", true},
		{"SHA-1", "sha1", true},
		{"MD5", "md5", true},
		{"Email Address", "email", true},
		{"Email Subject", "email_subject", true},
		{"Filename", "file_name", true},
		{"File Path", "file_path", true},
		{"Mutex", "mutex", true},
		{"Registry Key", "registry_key", true},
		{"User-agent", "user_agent", true},
		{"MAC Address", "mac_address", true},
		{"Username", "user", true},
		{"Hostname", "hostname", true},
		{"CIDR Block", "", false},
		{"ASN", "", false},
		{"SHA-384", "", false},
		{"SHA-512", "", false},
		{"Fuzzy Hash", "", false},
		{"String", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.tq, func(t *testing.T) {
			t.Parallel()
			got, ok := ctr.TypeFor(tt.tq)
			if got != tt.want || ok != tt.ok {
				t.Errorf("TypeFor(%q) = %q, %v; want %q, %v", tt.tq, got, ok, tt.want, tt.ok)
			}
			if ok && !ctr.ValidType(got) {
				t.Errorf("TypeFor(%q) = %q, not in the CTR enum", tt.tq, got)
			}
		})
	}
}
