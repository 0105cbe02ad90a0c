package threatq_test

import (
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/threatq"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  threatq.Config
		want []string // substrings of the error; none means valid
	}{
		{"password grant", passwordConfig("https://tq.example"), nil},
		{"client credentials", clientConfig("https://tq.example/api/"), nil},
		{"loopback http", passwordConfig("http://127.0.0.1:8080"), nil},
		{"localhost http", passwordConfig("http://localhost:8080"), nil},
		{"ipv6 loopback http", passwordConfig("http://[::1]:8080"), nil},
		{"empty", threatq.Config{}, []string{"THREATQ_URL is required", "credentials are required"}},
		{"remote http", passwordConfig("http://tq.example"), []string{"THREATQ_URL must be https", "THREATQ_ALLOW_HTTP"}},
		{"remote http allowed", func() threatq.Config { c := passwordConfig("http://tqsim:8080"); c.AllowHTTP = true; return c }(), nil},
		{"ftp", passwordConfig("ftp://tq.example"), []string{`scheme "ftp"`}},
		{"user in url", passwordConfig("https://u:p@tq.example"), []string{"must not carry credentials"}},
		{"password without client id", threatq.Config{URL: "https://tq.example", Email: "a@b", Password: "x"},
			[]string{"THREATQ_CLIENT_ID (the user's API client id) is required"}},
		{"email only", threatq.Config{URL: "https://tq.example", Email: "a@b"},
			[]string{"THREATQ_PASSWORD is required", "THREATQ_CLIENT_ID"}},
		{"client id without secret", threatq.Config{URL: "https://tq.example", ClientID: "id"}, []string{"THREATQ_CLIENT_SECRET is required"}},
		{"page size", func() threatq.Config { c := passwordConfig("https://tq.example"); c.PageSize = 5000; return c }(),
			[]string{"THREATQ_PAGE_SIZE 5000 is not between 1 and 1000"}},
		{"every problem at once", threatq.Config{URL: "http://tq.example", PageSize: -1, ClientSecret: "s"},
			[]string{"must be https", "THREATQ_CLIENT_ID is required", "THREATQ_PAGE_SIZE -1"}},
		{"insecure with a CA file", func() threatq.Config {
			c := passwordConfig("https://tq.example")
			c.Insecure = true
			c.CAFile = "/ca.pem"
			return c
		}(),
			[]string{"THREATQ_INSECURE and THREATQ_CA_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
	t.Run("prefix and secrets", func(t *testing.T) {
		t.Parallel()
		cfg := threatq.Config{URL: "http://remote.example", Email: "a@b", Password: config.Secret("hunter2-secret")}
		err := cfg.ValidatePrefixed("TQ2_")
		if err == nil || !strings.Contains(err.Error(), "TQ2_URL") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ValidatePrefixed = %v", err)
		}
		if _, err := threatq.New(cfg); err == nil {
			t.Error("New accepted an invalid configuration")
		}
	})
}
