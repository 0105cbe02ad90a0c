package threatq

import (
	"reflect"
	"testing"
)

var pageSeeds = []string{
	`{"total":2,"data":[{"id":1,"value":"10.0.0.1","type":"IP Address","status":"Active","score":5,"created_at":"2026-01-01 00:00:00","updated_at":"2026-01-02 03:04:05","attributes":[{"id":7,"name":"Confidence","value":"High"}],"sources":[{"id":3,"indicator_id":1,"name":"Feed A"}]},{"id":"2","value":"caf\u00e9.example","type":{"id":4,"name":"FQDN"},"status":{"id":2,"name":"Review"},"score":{"generated_score":2,"manual_score":null}}]}`,
	`{"total":1,"data":[{"id":1,"value":"x","type":"MD5","status":"Active","score":"7","attributes":{},"sources":["Feed B"]}]}`,
	`{"data":{}}`,
	`{"data":null}`,
	`{"data":{"id":3,"value":"one","type":"URL","status":"Active"}}`,
	`{"data":[{"id":1.5}]}`,
	`{"data":[{"id":1,"value":5}]}`,
	`{"data":[{"id":1,"attributes":[{"id":2,"name":"Port","value":9000}],"sources":[{"name":7}]}]}`,
	`{"data":[{"id":1,"updated_at":12}]}`,
	`{"data":[{"id":1,"sources":[{"id":"A","name":"S"}]}]}`,
}

// The one-pass decode of a page, when it succeeds, reads exactly what the
// lenient decode reads.
func FuzzDecodePaths(f *testing.F) {
	for _, s := range pageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ftotal, err := decodeIndicators[[]plainIndicator](b)
		if err != nil {
			return
		}
		slow, stotal, err := decodeIndicators[list[lenientIndicator]](b)
		if err != nil {
			t.Fatalf("the one-pass decode read %q, the lenient one fails: %v", b, err)
		}
		if ftotal != stotal || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decodes of %q differ:\none pass %+v (total %d)\nlenient  %+v (total %d)", b, fast, ftotal, slow, stotal)
		}
	})
}
