package misp_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/pkg/sharedtest"
)

func TestDecodeExampleEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file      string
		wrapped   bool
		wantUUID  string
		wantCount misp.Count
		minAttrs  int
	}{
		{"misp/misp-tests_event.json", true, "54884656-2da8-4625-bf07-43ef950d210b", 39, 1},
		{"misp/pymisp-tests_new_misp_event.json", true, "57c06bb1-625c-4d34-9b9f-4066950d210f", 0, 0},
		{"misp/pymisp-tests_misp_event.json", false, "5758ebf5-c898-48e6-9fe9-5665c0a83866", 2, 2},
		{"misp/pymisp-tests_mispevent_testfiles_existing_event.json", false, "", 0, 1},
		{"misp/pymisp-tests_mispevent_testfiles_attribute.json", false, "", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(sharedtest.Path(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var ev misp.Event
			if tt.wrapped {
				var w struct{ Event misp.Event }
				err = json.Unmarshal(b, &w)
				ev = w.Event
			} else {
				err = json.Unmarshal(b, &ev)
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if tt.wantUUID != "" && ev.UUID != tt.wantUUID {
				t.Errorf("uuid = %q, want %q", ev.UUID, tt.wantUUID)
			}
			if tt.wantCount != 0 && ev.AttributeCount != tt.wantCount {
				t.Errorf("attribute_count = %d, want %d", ev.AttributeCount, tt.wantCount)
			}
			if len(ev.Attribute) < tt.minAttrs {
				t.Errorf("%d attributes, want at least %d", len(ev.Attribute), tt.minAttrs)
			}
			for _, a := range ev.Attribute {
				if a.Type == "" || a.Value == "" {
					t.Errorf("attribute without type or value: %+v", a)
				}
			}
		})
	}
}

func TestDecodeSearchIndex(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(sharedtest.Path(t, "misp/pymisp-tests_search_index_result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []misp.Event
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].ID != "3" || rows[0].AttributeCount != 2 {
		t.Errorf("rows = %+v", rows)
	}
}

func TestLenientNumbers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in  string
		wantID    misp.NumStr
		wantCount misp.Count
	}{
		{"strings", `{"id":"123","attribute_count":"24999","info":"x"}`, "123", 24999},
		{"numbers", `{"id":123,"attribute_count":24999,"info":"x"}`, "123", 24999},
		{"nulls", `{"id":null,"attribute_count":null,"info":"x"}`, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ev misp.Event
			if err := json.Unmarshal([]byte(tt.in), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.ID != tt.wantID || ev.AttributeCount != tt.wantCount {
				t.Errorf("got id %q count %d", ev.ID, ev.AttributeCount)
			}
		})
	}
	out, err := json.Marshal(misp.Event{Info: "x", AttributeCount: 5})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"info":"x","published":false,"attribute_count":"5"}`; string(out) != want {
		t.Errorf("marshal = %s, want %s", out, want)
	}
}
