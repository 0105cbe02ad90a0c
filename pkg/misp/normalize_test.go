package misp_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/misp"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	sha256 := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		name, typ, in, want string
		wantErr             string // substring of the reason; "" for success
	}{
		{"ipv4 trimmed", "ip-dst", "  198.51.100.7\n", "198.51.100.7", ""},
		{"ipv4 refanged", "ip-dst", "198[.]51[.]100(dot)7", "198.51.100.7", ""},
		{"ipv6 compressed", "ip-dst", "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1", ""},
		{"ipv6 leading colon kept as MISP does", "ip-src", "::0001", "::0001", ""},
		{"ipv4 mapped", "ip-dst", "0:0:0:0:0:ffff:c633:6407", "::ffff:198.51.100.7", ""},
		{"cidr kept", "ip-dst", "10.0.0.5/24", "10.0.0.5/24", ""},
		{"cidr /32 dropped", "ip-dst", "10.0.0.5/32", "10.0.0.5", ""},
		{"ipv6 cidr compressed", "ip-dst", "2001:db8:0:0::/64", "2001:db8::/64", ""},
		{"ipv6 /128 dropped", "ip-dst", "2001:db8::1/128", "2001:db8::1", ""},
		{"cidr too long", "ip-dst", "10.0.0.0/33", "", "lower or equal 32"},
		{"cidr not numeric", "ip-dst", "10.0.0.0/x", "", "Invalid CIDR"},
		{"bad ip", "ip-dst", "300.1.1.1", "", "IP address has an invalid format"},
		{"ip leading zero", "ip-dst", "010.1.1.1", "", "IP address has an invalid format"},
		{"ip zone", "ip-dst", "fe80::1%eth0", "", "IP address has an invalid format"},
		{"domain lower and dots", "domain", ".Example.COM.", "example.com", ""},
		{"domain refanged", "domain", "evil[.]example[dot]org", "evil.example.org", ""},
		{"domain idn", "domain", "Bücher.de", "xn--bcher-kva.de", ""},
		{"domain idn upper", "domain", "MÜNCHEN.de", "xn--mnchen-3ya.de", ""},
		{"domain underscore ok", "domain", "_dmarc.example.com", "_dmarc.example.com", ""},
		{"domain no tld", "domain", "localhost", "", "Domain has an invalid format"},
		{"domain space", "domain", "a b.com", "", "Domain has an invalid format"},
		{"hostname lower only", "hostname", "WWW.Example.com", "www.example.com", ""},
		{"hostname trailing dot invalid", "hostname", "www.example.com.", "", "Hostname has an invalid format"},
		{"md5 lower", "md5", "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e", ""},
		{"md5 short", "md5", "d41d8cd98f00b204", "", "expected: 32 hexadecimal"},
		{"sha256", "sha256", strings.ToUpper(sha256), sha256, ""},
		{"sha256 non hex", "sha256", strings.Repeat("z", 64), "", "expected: 64 hexadecimal"},
		{"sha1 wrong length", "sha1", sha256, "", "expected: 40"},
		{"sha512 ok", "sha512", strings.Repeat("Ab", 64), strings.Repeat("ab", 64), ""},
		{"ja3", "ja3-fingerprint-md5", "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e", ""},
		{"ssdeep", "ssdeep", "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C", "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C", ""},
		{"ssdeep bad", "ssdeep", "not-a-hash", "", "blocksize:hash:hash"},
		{"email lower refanged", "email-src", "Bad.Guy[@]Example[.]com", "bad.guy@example.com", ""},
		{"email at", "email-src", "x[at]y.org", "x@y.org", ""},
		{"email invalid", "email-src", "no-at-sign.example", "", "Email address has an invalid format"},
		{"email space", "email-src", "a b@example.com", "", "Email address has an invalid format"},
		{"cve upper", "vulnerability", "cve-2021-44228", "CVE-2021-44228", ""},
		{"cve en dash", "vulnerability", "CVE–2021–44228", "CVE-2021-44228", ""},
		{"cve bad", "vulnerability", "CVE-21-1", "", "CVE-xxxx"},
		{"as prefix", "AS", "AS13335", "13335", ""},
		{"as lower prefix", "AS", "as13335", "13335", ""},
		{"asdot", "AS", "AS1.10", "65546", ""},
		{"as too big", "AS", "4294967296", "", "AS number"},
		{"as text", "AS", "ASabc", "", "AS number"},
		{"mac", "mac-address", "00-1A-2B-3C-4D-5E", "00:1a:2b:3c:4d:5e", ""},
		{"mac dotted", "mac-address", "001a.2b3c.4d5e", "00:1a:2b:3c:4d:5e", ""},
		{"mac bad", "mac-address", "00:1a:2b", "", "right type/format"},
		{"url refang", "url", "hxxps://evil[.]example[.]com/a[:]b", "https://evil.example.com/a:b", ""},
		{"url bracket hxxp", "url", "[hxxp://]evil.example.com/x", "http://evil.example.com/x", ""},
		{"url meow", "url", "MEOW://x.example/", "http://x.example/", ""},
		{"url case kept", "url", "http://Example.com/Path", "http://Example.com/Path", ""},
		{"url newline", "url", "http://a.example/\nb", "", "new line"},
		{"uri", "uri", "/wp-admin/x.php", "/wp-admin/x.php", ""},
		{"filename path", "filename", `C:\Windows\evil.exe`, `C:\Windows\evil.exe`, ""},
		{"regkey", "regkey", `HKLM\Software\Run`, `HKLM\Software\Run`, ""},
		{"text newline allowed", "text", "a\nb", "a\nb", ""},
		{"service name", "windows-service-name", "EvilSvc", "EvilSvc", ""},
		{"service name slash", "windows-service-name", `a\b`, "", "slashes"},
		{"service name long", "windows-service-name", strings.Repeat("a", 257), "", "256"},
		{"btc", "btc", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", ""},
		{"btc bad", "btc", "1A1z-P1", "", "right type/format"},
		{"emoji replaced", "text", "bad 😈 thing", "bad ? thing", ""},
		{"empty", "url", "   ", "", "empty"},
		{"control only", "text", "\x01\x02", "", "control characters"},
		{"too long", "text", strings.Repeat("a", misp.MaxValueBytes+1), "", "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := misp.Normalize(tt.typ, tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Normalize(%q, %q) = %q, want an error containing %q", tt.typ, tt.in, got, tt.wantErr)
				}
				if !errors.Is(err, misp.ErrInvalidValue) {
					t.Errorf("error %v does not wrap ErrInvalidValue", err)
				}
				var ive *misp.InvalidValueError
				if !errors.As(err, &ive) || !strings.Contains(ive.Reason, tt.wantErr) {
					t.Errorf("error %v, want reason containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%q, %q): %v", tt.typ, tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Normalize(%q, %q) = %q, want %q", tt.typ, tt.in, got, tt.want)
			}
			again, err := misp.Normalize(tt.typ, got)
			if err != nil || again != got {
				t.Errorf("Normalize is not idempotent: %q → %q, %v", got, again, err)
			}
		})
	}
}

func TestNormalizeUnknownType(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"domain|ip", "no-such-type", ""} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			if _, err := misp.Normalize(typ, "x"); !errors.Is(err, misp.ErrUnknownType) {
				t.Errorf("Normalize(%q) error = %v, want ErrUnknownType", typ, err)
			}
		})
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "::1/128", "Bücher.de", "hxxp://x[.]y", "AS1.2", "😈", "\xf0\x28\x8c\xbc"} {
		f.Add(s)
	}
	types := []string{"ip-dst", "domain", "url", "md5", "email-src", "AS", "mac-address", "vulnerability", "text"}
	f.Fuzz(func(t *testing.T, v string) {
		for _, typ := range types {
			got, err := misp.Normalize(typ, v)
			if err != nil {
				continue
			}
			again, err := misp.Normalize(typ, got)
			if err != nil || again != got {
				t.Errorf("%s: %q → %q → %q, %v", typ, v, got, again, err)
			}
		}
	})
}
