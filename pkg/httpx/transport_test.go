package httpx_test

import (
	"errors"
	"testing"

	"github.com/tqflow/tqflow/pkg/httpx"
)

func TestTransportCheck(t *testing.T) {
	t.Parallel()
	base := httpx.Transport{System: "ctr", AllowHTTPVar: "CTR_ALLOW_HTTP", InsecureVar: "CTR_INSECURE", CAFileVar: "CTR_CA_FILE"}
	with := func(f func(*httpx.Transport)) httpx.Transport { t := base; f(&t); return t }
	tests := []struct {
		name     string
		tr       httpx.Transport
		wantErr  error
		warnings []string // settings warned about
	}{
		{"https", with(func(t *httpx.Transport) { t.URLs = [][2]string{{"CTR_BASE_URL", "https://ctr.example"}} }), nil, nil},
		{"empty url", with(func(t *httpx.Transport) { t.URLs = [][2]string{{"CTR_BASE_URL", ""}} }), nil, nil},
		{"remote http", with(func(t *httpx.Transport) { t.URLs = [][2]string{{"CTR_BASE_URL", "http://ctr.example"}} }), httpx.ErrPlainHTTP, nil},
		{"remote http, upper-case scheme", with(func(t *httpx.Transport) { t.URLs = [][2]string{{"CTR_BASE_URL", "HTTP://ctr.example"}} }), httpx.ErrPlainHTTP, nil},
		{"remote http allowed", with(func(t *httpx.Transport) {
			t.URLs = [][2]string{{"CTR_BASE_URL", "http://sandbox:18081"}}
			t.AllowHTTP = true
		}), nil, []string{"CTR_ALLOW_HTTP"}},
		{"loopback http", with(func(t *httpx.Transport) { t.URLs = [][2]string{{"CTR_BASE_URL", "http://127.0.0.1:1"}} }), nil, []string{"CTR_BASE_URL"}},
		{"ipv6 loopback", with(func(t *httpx.Transport) { t.URLs = [][2]string{{"CTR_BASE_URL", "http://[::1]:1"}} }), nil, []string{"CTR_BASE_URL"}},
		{"insecure", with(func(t *httpx.Transport) { t.Insecure = true }), nil, []string{"CTR_INSECURE"}},
		{"insecure with a CA file", with(func(t *httpx.Transport) { t.Insecure = true; t.CAFile = "/ca.pem" }), httpx.ErrInsecureWithCA, []string{"CTR_INSECURE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs, warns := tt.tr.Check()
			err := errors.Join(errs...)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			var got []string
			for _, w := range warns {
				if w.System != "ctr" || w.Problem == "" {
					t.Errorf("warning %+v", w)
				}
				got = append(got, w.Setting)
			}
			if len(got) != len(tt.warnings) || (len(got) > 0 && got[0] != tt.warnings[0]) {
				t.Errorf("warnings %v, want %v", got, tt.warnings)
			}
		})
	}
}
