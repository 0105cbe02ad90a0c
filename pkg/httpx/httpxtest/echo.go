// Package httpxtest holds hostile HTTP servers for the API clients' tests:
// one that echoes every request into its error answer, as some servers and
// proxies do on a 401.
package httpxtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// Dump returns the request as text: method, URL, the Authorization
// header, the body (up to 64 KiB) and the other headers, unquoted, so that
// a client's quote-stripping does not hide it (the body's quotes are
// dropped).
func Dump(r *http.Request) string {
	var b strings.Builder
	// Credentials first, so that a client that shortens messages still
	// meets them.
	fmt.Fprintf(&b, "%s %s Authorization: %s ", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"))
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	b.WriteString(strings.ReplaceAll(string(body), `"`, "")) // quotes off: clients redact quoted text
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		if k != "Authorization" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s: %s", k, strings.Join(r.Header[k], ", "))
	}
	return b.String()
}

// Echo answers every request with status and a JSON body whose usual
// error fields (message, error, error_description, errors, name, url)
// each hold [Dump] of the request; the Dump is also in a header.
func Echo(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := Dump(r)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo", strings.ReplaceAll(d, "\n", " "))
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"message": d, "error": d, "error_description": d, "name": d, "url": d,
			"errors": []string{d}, "data": map[string]any{"errors": map[string][]string{"value": {d}}},
		})
	}
}

// Forms returns the ways a secret may show in text: as is, URL-escaped and
// base64. pairs are user, password pairs sent as HTTP Basic credentials.
func Forms(secrets []string, pairs ...[2]string) []string {
	var out []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		out = append(out, s, url.QueryEscape(s), url.PathEscape(s), base64.StdEncoding.EncodeToString([]byte(s)))
	}
	for _, p := range pairs {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(p[0]+":"+p[1])))
		out = append(out, Forms([]string{p[0], p[1]})...)
	}
	return out
}

// NoLeak fails t for every form found in text, saying where.
func NoLeak(t testing.TB, where, text string, forms []string) {
	t.Helper()
	for _, f := range forms {
		if strings.Contains(text, f) {
			t.Errorf("%s leaks a secret form %q:\n%s", where, f, text)
		}
	}
}
