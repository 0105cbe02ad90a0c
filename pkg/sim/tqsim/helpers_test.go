package tqsim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/sim/tqsim"
)

// start serves a simulator for the test.
func start(t *testing.T, opts tqsim.Options) (*tqsim.Server, *httptest.Server) {
	t.Helper()
	s := tqsim.New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

// token mints a token with the default user.
func token(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	u := tqsim.DefaultUser
	body, _ := json.Marshal(map[string]string{"grant_type": "password", "email": u.Email, "password": u.Password, "client_id": u.ClientID})
	resp, err := http.Post(srv.URL+"/api/token", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token: status %d, err %v", resp.StatusCode, err)
	}
	return tr.AccessToken
}

// call makes an authorized API call and returns the status and body.
func call(t *testing.T, srv *httptest.Server, tok, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// page is a query answer, decoded loosely.
type page struct {
	Total  int              `json:"total"`
	Data   json.RawMessage  `json:"data"`
	Limit  int              `json:"limit"`
	Offset int              `json:"offset"`
	Items  []map[string]any `json:"-"`
}

// query runs POST /api/indicators/query and decodes the answer.
func query(t *testing.T, srv *httptest.Server, tok string, params url.Values, body any) page {
	t.Helper()
	status, b := call(t, srv, tok, http.MethodPost, "/api/indicators/query?"+params.Encode(), body)
	if status != http.StatusOK {
		t.Fatalf("query: status %d: %s", status, b)
	}
	var p page
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("query: %v", err)
	}
	if len(p.Data) > 0 && p.Data[0] == '[' {
		if err := json.Unmarshal(p.Data, &p.Items); err != nil {
			t.Fatalf("query data: %v", err)
		}
	}
	return p
}
