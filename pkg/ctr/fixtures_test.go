package ctr_test

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/pkg/sharedtest"
)

// readShared returns the bytes of a file of shared/data/ctr.
func readShared(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(sharedtest.Path(t, "ctr/"+name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wrapRelay puts a relay module's own answer ({"data": {collections}})
// into the IROH envelope, as IROH does, under the given module name.
func wrapRelay(t *testing.T, module string, relay []byte) []byte {
	t.Helper()
	var r struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(relay, &r); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{
		"data": []any{map[string]any{
			"module":             module,
			"module_instance_id": "7f1c2e9a-0000-4000-8000-000000000001",
			"module_type_id":     "a14ae422-01b6-5013-9876-695ff1b0ebe0",
			"data":               r.Data,
		}},
		"errors": []any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err) // A literal in this file.
	}
	return t
}

func attrs(kv ...string) []ctr.Attribute {
	out := make([]ctr.Attribute, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, ctr.Attribute{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

const sha = "8fda14f91e27afec5c1b1f71d708775c9b6e2af31e8331bbf26751bc0583dc7e"

// TestSharedExamples decodes every enrich example of shared/data/ctr and
// checks the attributes the mapping gives, written out by hand from the
// files.
func TestSharedExamples(t *testing.T) {
	t.Parallel()
	type want struct {
		obs   ctr.Observable
		now   string
		attrs []ctr.Attribute // the first module's result; nil: no result
	}
	amp := attrs(
		"CTR Module", "AMP File Reputation", "Disposition", "Malicious", "Confidence", "High",
		"Severity", "High", "Description", "AMP ProtectDB Conviction", "Source", "AMP Protect DB",
		"Priority", "90", "Origin", "Cisco Threat Response")
	gti := attrs(
		"CTR Module", "SecureX Global Threat Intelligence", "Disposition", "Suspicious",
		"Confidence", "High", "Severity", "High",
		// GTI gives no reason: the title of the indicator its judgement is
		// an element of.
		"Description", "Threat Spotlight: Following the LNK metadata trail", "Source", "Talos Threat Advisory Blog",
		"Priority", "95", "Origin", "Cisco Threat Response",
		"Reference", "https://blog.talosintelligence.com/following-the-lnk-metadata-trail")
	abuse := attrs(
		// The verdict says Suspicious, the judgements Malicious: the
		// verdict is the module's answer (ctr.md, corrections 5).
		"CTR Module", "AbuseIPDB", "Disposition", "Suspicious", "Confidence", "Medium",
		"Severity", "Medium", "Description", "title for id 15, title for id 21", "Source", "AbuseIPDB",
		"Priority", "85", "Origin", "AbuseIPDB Enrichment Module",
		"Reference", "https://www.abuseipdb.com/check/118.25.6.39")
	xforce := attrs(
		"CTR Module", "IBM X-Force Exchange", "Disposition", "Unknown", "Confidence", "High",
		"Severity", "Low", "Description", "IP addresses that ibm.com resolves to",
		"Source", "IBM X-Force Exchange", "Priority", "85", "Origin", "IBM X-Force Exchange Enrichment Module")
	ip := ctr.Observable{Type: "ip", Value: "118.25.6.39"}
	ibm := ctr.Observable{Type: "domain", Value: "ibm.com"}
	type example struct {
		name    string
		body    func(t *testing.T) []byte
		modules int
		errs    int
		wants   []want
		// more holds, by index into wants, the results of the modules
		// after the first.
		more map[int][][]ctr.Attribute
	}
	tests := []example{
		{
			name: "swagger observe, both modules answer", modules: 2,
			more: map[int][][]ctr.Attribute{0: {gti}, 1: {gti}},
			body: func(t *testing.T) []byte { return readShared(t, "iroh-enrich_observe-observables_200.example.json") },
			wants: []want{
				{ctr.Observable{Type: "sha256", Value: sha}, "2023-02-10T00:00:00Z", amp},
				{ctr.Observable{Type: "SHA256", Value: strings.ToUpper(sha)}, "2023-02-10T00:00:00Z", amp},
				// GTI's verdict and judgement expired: its sightings alone are
				// no context.
				{ctr.Observable{Type: "sha256", Value: sha}, "2026-01-01T00:00:00Z", amp},
				{ctr.Observable{Type: "sha256", Value: "0000"}, "2023-02-10T00:00:00Z", nil},
				{ctr.Observable{Type: "md5", Value: sha}, "2023-02-10T00:00:00Z", nil},
			},
		},
		{
			name: "swagger reputation, per-module data", modules: 2,
			more: map[int][][]ctr.Attribute{0: {gti}},
			body: func(t *testing.T) []byte {
				var r struct {
					Data json.RawMessage `json:"data"`
				}
				if err := json.Unmarshal(readShared(t, "iroh-enrich_reputation-observable_200.example.json"), &r); err != nil {
					t.Fatal(err)
				}
				return r.Data
			},
			wants: []want{
				{ctr.Observable{Type: "sha256", Value: sha}, "2023-02-10T00:00:00Z", amp},
				{ctr.Observable{Type: "sha256", Value: sha}, "2023-02-18T13:04:02Z", amp},
			},
		},
		{
			name: "swagger deliberate: verdicts only", modules: 1,
			body: func(t *testing.T) []byte { return readShared(t, "iroh-enrich_deliberate-observables_200.example.json") },
			wants: []want{
				{ctr.Observable{Type: "url", Value: "https://ilo.brenz.pl/"}, "2023-02-10T00:00:00Z",
					attrs("CTR Module", "Sample Module", "Disposition", "Malicious")},
				{ctr.Observable{Type: "url", Value: "http://ilo.brenz.pl/favicon.ico/"}, "2023-02-10T00:00:00Z",
					attrs("CTR Module", "Sample Module", "Disposition", "Malicious")},
				{ctr.Observable{Type: "url", Value: "HTTPS://ILO.BRENZ.PL/"}, "2023-02-10T00:00:00Z", nil},
				{ctr.Observable{Type: "url", Value: "https://ilo.brenz.pl/"}, "2023-03-11T13:36:23.410Z", nil},
			},
		},
		{
			name: "sx00 deliberate, old envelope", modules: 2,
			body: func(t *testing.T) []byte { return readShared(t, "sx00-docs_deliberate-observables_200.json") },
			wants: []want{
				{ctr.Observable{Type: "domain", Value: "Cisco.COM"}, "2020-05-01T00:00:00Z",
					attrs("CTR Module", "Talos Intelligence", "Disposition", "Clean")},
			},
		},
		{
			name: "sx00 observe, Talos judgement and verdict linked", modules: 1,
			body: func(t *testing.T) []byte { return readShared(t, "sx00-docs_observe-observables_200.json") },
			wants: []want{
				{ctr.Observable{Type: "domain", Value: "cisco.com"}, "2020-05-01T00:00:00Z", attrs(
					"CTR Module", "Talos Intelligence", "Disposition", "Clean", "Confidence", "High",
					"Severity", "None", "Description", "Good Talos Intelligence reputation score",
					"Source", "Talos Intelligence", "Priority", "90", "Origin", "Cisco Threat Response",
					"Reference", "https://www.talosintelligence.com/reputation_center/lookup?search=cisco.com")},
				{ctr.Observable{Type: "domain", Value: "cisco.com"}, "2020-06-01T00:00:00Z", nil},
			},
		},
		{
			name: "relay abuseipdb observe", modules: 1,
			body: func(t *testing.T) []byte {
				return wrapRelay(t, "AbuseIPDB", readShared(t, "relay-abuseipdb_observe-observables.expected.json"))
			},
			wants: []want{
				// The second judgement expired on 03-04; the first holds.
				{ip, "2020-03-12T00:00:00Z", abuse},
				// Both valid, same priority and disposition: the latest start wins.
				{ip, "2020-03-01T00:00:00Z", abuse},
				// Both expired: the verdict (no valid_time) alone.
				{ip, "2020-04-01T00:00:00Z", attrs("CTR Module", "AbuseIPDB", "Disposition", "Suspicious")},
				{ctr.Observable{Type: "ipv6", Value: "118.25.6.39"}, "2020-03-12T00:00:00Z", nil},
			},
		},
		{
			name: "relay abuseipdb deliberate", modules: 1,
			body: func(t *testing.T) []byte {
				return wrapRelay(t, "AbuseIPDB", readShared(t, "relay-abuseipdb_deliberate-observables.expected.json"))
			},
			wants: []want{{ip, "2026-01-01T00:00:00Z", attrs("CTR Module", "AbuseIPDB", "Disposition", "Suspicious")}},
		},
		{
			name: "relay pulsedive observe: relations as an object, description from a sighting", modules: 1,
			body: func(t *testing.T) []byte {
				return wrapRelay(t, "Pulsedive", readShared(t, "relay-pulsedive_observe-observables.expected.json"))
			},
			wants: []want{
				{ctr.Observable{Type: "domain", Value: "ParkingCrew.net"}, "2020-05-01T00:00:00Z", attrs(
					"CTR Module", "Pulsedive", "Disposition", "Suspicious", "Confidence", "Medium",
					"Severity", "Medium", "Description", "found in threat feeds", "Source", "Pulsedive",
					"Priority", "85", "Origin", "Cisco Threat Response",
					"Reference", "https://pulsedive.com/indicator/?iid=118")},
				{ctr.Observable{Type: "domain", Value: "parkingcrew.net"}, "2020-07-01T00:00:00Z", nil},
			},
		},
	}
	for _, lim := range []string{"0", "1", "2"} {
		tests = append(tests, example{
			name: "relay xforce entities limit " + lim, modules: 1,
			body: func(t *testing.T) []byte {
				var all map[string]json.RawMessage
				if err := json.Unmarshal(readShared(t, "relay-xforce_observe-observables_by-entities-limit.expected.json"), &all); err != nil {
					t.Fatal(err)
				}
				return wrapRelay(t, "IBM X-Force Exchange", all[lim])
			},
			// The judgement has no valid_time: it never expires.
			wants: []want{{ibm, "2030-01-01T00:00:00Z", xforce}},
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ctr.DecodeResponse(tt.body(t))
			if err != nil {
				t.Fatalf("DecodeResponse: %v", err)
			}
			if len(r.Modules) != tt.modules || len(r.Errors) != tt.errs {
				t.Fatalf("%d modules and %d errors, want %d and %d", len(r.Modules), len(r.Errors), tt.modules, tt.errs)
			}
			for wi, w := range tt.wants {
				res, ok := r.ResultsFor([]ctr.Observable{w.obs}, at(w.now))[w.obs]
				if w.attrs == nil {
					if ok {
						t.Errorf("%v at %s: got %v, want no result", w.obs, w.now, res)
					}
					continue
				}
				if !ok {
					t.Errorf("%v at %s: no result, want %v", w.obs, w.now, w.attrs)
					continue
				}
				wants := append([][]ctr.Attribute{w.attrs}, tt.more[wi]...)
				var got [][]ctr.Attribute
				for _, r := range res {
					got = append(got, r.Attributes)
					if r.Module != r.Attributes[0].Value {
						t.Errorf("Module = %q, want %q", r.Module, r.Attributes[0].Value)
					}
				}
				if !reflect.DeepEqual(got, wants) {
					t.Errorf("%v at %s:\n got  %v\n want %v", w.obs, w.now, got, wants)
				}
			}
		})
	}
}

func TestSharedExampleDetails(t *testing.T) {
	t.Parallel()
	r, err := ctr.DecodeResponse(readShared(t, "iroh-enrich_observe-observables_200.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	gti := r.Modules[1]
	if gti.InstanceID != "06ce1f6c-fc38-44f3-92c7-08b15258bd89" || gti.TypeID != "f0c76f8e-e766-495e-8804-6c6f9247f4db" {
		t.Errorf("ids = %q, %q", gti.InstanceID, gti.TypeID)
	}
	wantCounts := map[string]float64{
		"attack_patterns": 4, "indicators": 1, "actors": 1, "malwares": 2, "verdicts": 1,
		"relationships": 9, "judgements": 1, "sightings": 1,
	}
	if !reflect.DeepEqual(gti.Counts, wantCounts) {
		t.Errorf("counts = %v, want %v", gti.Counts, wantCounts)
	}
	v := gti.Verdicts[0]
	if v.JudgementID != gti.Judgements[0].ID || v.ValidTime.End != at("2023-02-18T13:04:02Z") {
		t.Errorf("verdict = %+v", v)
	}
	if r.Modules[0].Verdicts[0].JudgementID != "" {
		t.Error("the AMP verdict has no judgement_id")
	}
	old, err := ctr.DecodeResponse(readShared(t, "sx00-docs_deliberate-observables_200.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m := old.Modules[0]; m.LegacyType != "SenderBaseInvestigateModule" || m.InstanceID != "" || m.Name != "Talos Intelligence" {
		t.Errorf("old envelope module = %+v", m)
	}
	if m := old.Modules[1]; m.Counts["verdicts"] != 0 || len(m.Verdicts) != 0 {
		t.Errorf("empty module = %+v", m)
	}
}

// TestSharedOtherBodies decodes the refer, health and error examples,
// which must decode (or be refused) without a panic and give no result.
func TestSharedOtherBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file      string
		key       string // a key inside the file holding the body
		errCodes  []string
		decodeErr bool
	}{
		{file: "iroh-enrich_refer-observables_200.example.json"},
		{file: "sx00-docs_refer-observables_200.json"},
		{file: "sx00-docs_respond-observables_200.json"},
		{file: "relay-pulsedive_refer-observables.expected.json"},
		{file: "iroh-enrich_health_200.example.json"},
		{file: "iroh-enrich_error_401.example.json"},
		{file: "iroh-enrich_error_500.example.json"},
		{file: "iroh-inspect_error_403.example.json"},
		{file: "sx00-docs_inspect_200.json", decodeErr: true},
		{file: "relay-abuseipdb_errors.expected.json", key: "EXPECTED_RESPONSE_429_ERROR", errCodes: []string{"too many requests"}},
		{file: "relay-abuseipdb_errors.expected.json", key: "EXPECTED_RESPONSE_AUTH_ERROR", errCodes: []string{"authorization error"}},
		{file: "relay-pulsedive_errors.expected.json", key: "EXPECTED_PAYLOAD_REQUEST_TIMEOUT", errCodes: []string{"request timeout"}},
		{file: "relay-pulsedive_errors.expected.json", key: "EXPECTED_RESPONSE_KEY_ERROR", errCodes: []string{"key error"}},
	}
	for _, tt := range tests {
		t.Run(tt.file+tt.key, func(t *testing.T) {
			t.Parallel()
			body := readShared(t, tt.file)
			if tt.key != "" {
				var all map[string]json.RawMessage
				if err := json.Unmarshal(body, &all); err != nil {
					t.Fatal(err)
				}
				body = all[tt.key]
			}
			r, err := ctr.DecodeResponse(body)
			if tt.decodeErr {
				if err == nil {
					t.Fatal("want an error for a body that is not an envelope")
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeResponse: %v", err)
			}
			var codes []string
			for _, e := range r.Errors {
				codes = append(codes, e.Code)
				if e.Type != "fatal" || e.Message == "" {
					t.Errorf("module error = %+v", e)
				}
			}
			if !reflect.DeepEqual(codes, tt.errCodes) {
				t.Errorf("error codes = %v, want %v", codes, tt.errCodes)
			}
			if r.ErrorCount() != len(tt.errCodes) {
				t.Errorf("ErrorCount = %d", r.ErrorCount())
			}
			if res := r.ResultsFor([]ctr.Observable{{Type: "domain", Value: "cisco.com"}}, time.Now()); len(res) != 0 {
				t.Errorf("results = %v, want none", res)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		wantErr bool
		modules int
	}{
		{"empty", "", true, 0},
		{"truncated", `{"data":[{"module":"x"`, true, 0},
		{"array", `[]`, true, 0},
		{"html", `<html>oops</html>`, true, 0},
		{"data object", `{"data":{"verdicts":{}}}`, true, 0},
		{"no data", `{}`, false, 0},
		{"null data", `{"data":null,"errors":null}`, false, 0},
		{"odd entries", `{"data":[1,"x",null,{"module":5,"data":[]},{"module":"m","data":{"verdicts":"no"}}]}`, false, 2},
		{"odd docs", `{"data":[{"module":"m","data":{"verdicts":{"count":"2","docs":[1,null,{"observable":"x","disposition":"2"},{"observable":{"type":"ip","value":"1.2.3.4"},"disposition":2.0,"valid_time":{"end_time":"garbage"}}]}}}]}`, false, 1},
		{"errors not array", `{"data":[],"errors":{"x":1}}`, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ctr.DecodeResponse([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && len(r.Modules) != tt.modules {
				t.Errorf("%d modules, want %d", len(r.Modules), tt.modules)
			}
		})
	}
	r, err := ctr.DecodeResponse([]byte(tests[8].body))
	if err != nil {
		t.Fatal(err)
	}
	obs := ctr.Observable{Type: "ip", Value: "1.2.3.4"}
	got := r.ResultsFor([]ctr.Observable{obs}, time.Now())[obs]
	if want := attrs("CTR Module", "m", "Disposition", "Malicious"); len(got) != 1 || !reflect.DeepEqual(got[0].Attributes, want) {
		t.Errorf("lenient verdict: got %v, want %v", got, want)
	}
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"data":[{"module":"m","data":{"verdicts":{"count":1.0,"docs":[{"observable":{"type":"ip","value":"1.2.3.4"},"disposition":2}]}}}]}`))
	f.Add([]byte(`{"data":[{"module":"m","data":{"sightings":{"docs":[{"observables":[{"type":"ip","value":"1"}],"relations":{"a":1}}]},"judgements":{"docs":[{"observable":{"type":"ip","value":"1"},"priority":"x","disposition":9}]}}}]}`))
	f.Add([]byte(`{"data":[],"errors":[{"code":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ctr.DecodeResponse(b)
		if err != nil {
			return
		}
		obs := []ctr.Observable{{Type: "ip", Value: "1.2.3.4"}, {Type: "ip", Value: "1"}}
		for _, rs := range r.ResultsFor(obs, time.Now()) {
			for _, res := range rs {
				for _, a := range res.Attributes {
					if a.Value == "" {
						t.Fatalf("empty attribute %q", a.Name)
					}
				}
			}
		}
	})
}
