package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Validator checks raw JSON against the embedded JSON Schemas.
type Validator struct {
	schemas map[string]*jsonschema.Schema
}

// NewValidator compiles every embedded schema.
func NewValidator() (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	names, err := fs.Glob(Files, "*.v1.json")
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	v := &Validator{schemas: make(map[string]*jsonschema.Schema, len(names))}
	for _, n := range names {
		data, err := Files.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read schema %s: %w", n, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("parse schema %s: %w", n, err)
		}
		if err := c.AddResource(n, doc); err != nil {
			return nil, fmt.Errorf("add schema %s: %w", n, err)
		}
		s, err := c.Compile(n)
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", n, err)
		}
		v.schemas[strings.TrimSuffix(n, ".json")] = s
	}
	return v, nil
}

// Validate checks data against the schema named by its "schema" field.
func (v *Validator) Validate(data []byte) error {
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("%w: decode: %w", ErrInvalid, err)
	}
	return v.ValidateAs(head.Schema, data)
}

// ValidateAs checks data against the named schema (e.g. "write.v1").
func (v *Validator) ValidateAs(schema string, data []byte) error {
	s, ok := v.schemas[schema]
	if !ok {
		return fmt.Errorf("%w: unknown schema %q", ErrInvalid, schema)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: decode: %w", ErrInvalid, err)
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("%w %s: %w", ErrInvalid, schema, err)
	}
	return nil
}
