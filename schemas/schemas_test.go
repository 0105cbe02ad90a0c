package schemas_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tqflow/tqflow/schemas"
)

// decoders maps a schema to the strict Go decoder of its messages. The
// dead letter type lives in pkg/bus; its JSON Schema is checked alone.
var decoders = map[string]func([]byte) error{
	schemas.IndicatorV1: func(b []byte) error { return schemas.Decode(b, &schemas.Indicator{}) },
	schemas.WriteV1:     func(b []byte) error { return schemas.Decode(b, &schemas.Write{}) },
	schemas.RulesetV1:   func(b []byte) error { return schemas.Decode(b, &schemas.Ruleset{}) },
}

// TestExamplesAgree keeps the fast Go checks and the JSON Schemas in step:
// every example under testdata/<schema>/valid passes both, every one under
// invalid fails both.
func TestExamplesAgree(t *testing.T) {
	t.Parallel()
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/*/*/*.json")
	if err != nil || len(files) < 10 {
		t.Fatalf("examples: %v, %d files", err, len(files))
	}
	for _, f := range files {
		schema := filepath.Base(filepath.Dir(filepath.Dir(f)))
		wantValid := filepath.Base(filepath.Dir(f)) == "valid"
		t.Run(f, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.ValidateAs(schema, data); (err == nil) != wantValid {
				t.Errorf("JSON Schema: err = %v, want valid %v", err, wantValid)
			}
			if dec, ok := decoders[schema]; ok {
				err := dec(data)
				if (err == nil) != wantValid {
					t.Errorf("Go decoder: err = %v, want valid %v", err, wantValid)
				}
				if err != nil && !errors.Is(err, schemas.ErrInvalid) {
					t.Errorf("Go decoder error %v does not wrap ErrInvalid", err)
				}
			}
		})
	}
}

func TestRoundTripValidates(t *testing.T) {
	t.Parallel()
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	w := schemas.Write{Schema: schemas.WriteV1, Kind: schemas.KindIndicator, Instance: "x",
		Indicator: &schemas.IndicatorWrite{ID: 1, Value: "v", Type: "URL", Source: "s", Attributes: []schemas.Attribute{}}}
	data, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(data); err != nil {
		t.Errorf("a Go-built write does not validate: %v\n%s", err, data)
	}
}

func TestDecodeRejectsTrailingData(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/ruleset.v1/valid/file.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := schemas.Decode(append(data, []byte(`{}`)...), &schemas.Ruleset{}); !errors.Is(err, schemas.ErrInvalid) {
		t.Errorf("trailing data: err = %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, dec := range decoders {
			_ = dec(data) // Must not panic.
		}
	})
}
