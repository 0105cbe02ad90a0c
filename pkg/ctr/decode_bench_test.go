package ctr_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
)

// BenchmarkDecodeResponse decodes the simulator's answer for a batch of 50
// observables, 15 of them with context: the enricher's hot path.
func BenchmarkDecodeResponse(b *testing.B) {
	s := ctrsim.New(ctrsim.Options{Seed: 1})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	var obs []ctrsim.Observable
	for i := range 50 {
		o := ctrsim.Observable{Type: "ip", Value: fmt.Sprintf("198.51.100.%d", i)}
		if i%10 < 3 {
			s.AddContext(o, ctrsim.GenerateContext(1, o)...)
		}
		obs = append(obs, o)
	}
	req, _ := json.Marshal(obs)
	tr, _ := http.NewRequest(http.MethodPost, srv.URL+"/iroh/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	tr.SetBasicAuth(ctrsim.DefaultClientID, ctrsim.DefaultClientPassword)
	tr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tr.Header.Set("Accept", "application/json")
	tok, err := http.DefaultClient.Do(tr)
	if err != nil {
		b.Fatal(err)
	}
	var t struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(tok.Body).Decode(&t)
	tok.Body.Close()
	r, _ := http.NewRequest(http.MethodPost, srv.URL+"/iroh/iroh-enrich/observe/observables", bytes.NewReader(req))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+t.AccessToken)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %s", resp.Status, body)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := ctr.DecodeResponse(body)
		if err != nil || len(r.Modules) == 0 {
			b.Fatalf("%v, %d modules", err, len(r.Modules))
		}
	}
}
