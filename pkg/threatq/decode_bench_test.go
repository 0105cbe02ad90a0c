package threatq_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tqflow/tqflow/pkg/sim/tqsim"
	"github.com/tqflow/tqflow/pkg/threatq"
)

// BenchmarkDecodeIndicators decodes a page of 1,000 indicators as the
// simulator serves it: the fetcher's hot path.
func BenchmarkDecodeIndicators(b *testing.B) {
	s := tqsim.New(tqsim.Options{})
	if err := s.Load(tqsim.Generate(tqsim.GenerateOptions{Seed: 3, N: 1000})); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	u := tqsim.DefaultUser
	grant, _ := json.Marshal(map[string]string{"grant_type": "password", "email": u.Email, "password": u.Password, "client_id": u.ClientID})
	resp, err := http.Post(srv.URL+"/api/token", "application/json", bytes.NewReader(grant))
	if err != nil {
		b.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	_ = resp.Body.Close()
	q, err := threatq.Query{}.Body()
	if err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/indicators/query?limit=1000&sort=updated_at,id", bytes.NewReader(q))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %.200s", resp.Status, body)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		inds, _, err := threatq.DecodeIndicators(body)
		if err != nil || len(inds) != 1000 {
			b.Fatalf("%v, %d indicators", err, len(inds))
		}
	}
}
