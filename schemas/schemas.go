// Package schemas holds tqflow's message schemas (the *.v1.json files,
// embedded), the Go types of those messages, and their validation.
//
// Workers decode with the Decode functions, which are strict (unknown
// fields and trailing data are errors) and check what the JSON Schemas
// check, fast enough for the hot path; [Validator] checks raw JSON against
// the schemas themselves, for tools and tests. A test keeps the two in
// agreement over the examples in testdata/.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"time"
)

// Files holds the JSON Schemas, by file name (e.g. "indicator.v1.json").
//
//go:embed *.v1.json
var Files embed.FS

// Schema names, as in each message's "schema" field.
const (
	IndicatorV1  = "indicator.v1"
	WriteV1      = "write.v1"
	RulesetV1    = "ruleset.v1"
	DeadLetterV1 = "deadletter.v1"
)

// Jobs that read indicators.
const (
	JobCTR  = "ctr"
	JobMISP = "misp"
)

// JobET is the ET signatures job, which reads rulesets.
const JobET = "et"

// Write kinds.
const (
	KindIndicator = "indicator"
	KindSignature = "signature"
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid message")

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Attribute is a name and value, with the ThreatQ row ID where known.
type Attribute struct {
	ID    int64  `json:"id,omitempty"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Row is an attribute row of an indicator as ThreatQ showed it to the
// fetcher (indicator.v1).
type Row struct {
	ID    int64  `json:"id,omitempty"`
	Name  string `json:"name"`
	Value string `json:"value"`
	// Sources are the row's own sources, when ThreatQ showed them, so a
	// reader can tell its own rows from other feeds' (a row listing its
	// source alone is its own). Nil when ThreatQ did not show them (a
	// message of an older fetcher, an instance that ignores
	// with=attributes.sources) and when the row lists none: either way
	// the row is nobody's to remove.
	Sources []string `json:"sources,omitempty"`
}

// Indicator is an indicator.v1 message.
type Indicator struct {
	Schema    string        `json:"schema"`
	Job       string        `json:"job"`
	Instance  string        `json:"instance"`
	RunID     string        `json:"run_id,omitempty"`
	Indicator IndicatorData `json:"indicator"`
}

// IndicatorData is the ThreatQ indicator inside an [Indicator].
type IndicatorData struct {
	ID         int64      `json:"id"`
	Value      string     `json:"value"`
	Type       string     `json:"type"`
	Status     string     `json:"status,omitempty"`
	Score      float64    `json:"score"`
	CreatedAt  *time.Time `json:"created_at,omitempty"`
	UpdatedAt  time.Time  `json:"updated_at"`
	Attributes []Row      `json:"attributes,omitempty"`
}

// Validate checks what indicator.v1.json checks.
func (m *Indicator) Validate() error {
	var errs []error
	if m.Schema != IndicatorV1 {
		errs = append(errs, fmt.Errorf("schema is %q, want %q", m.Schema, IndicatorV1))
	}
	if m.Job != JobCTR && m.Job != JobMISP {
		errs = append(errs, fmt.Errorf("job %q: want ctr or misp", m.Job))
	}
	if !tokenRE.MatchString(m.Instance) {
		errs = append(errs, fmt.Errorf("instance %q: want 1 to 64 letters, digits, - or _", m.Instance))
	}
	if len(m.RunID) > 64 {
		errs = append(errs, errors.New("run_id longer than 64"))
	}
	d := m.Indicator
	if d.ID < 1 {
		errs = append(errs, fmt.Errorf("indicator.id %d: want >= 1", d.ID))
	}
	if d.Value == "" || len(d.Value) > 65535 {
		errs = append(errs, errors.New("indicator.value: want 1 to 65535 bytes"))
	}
	if d.Type == "" || len(d.Type) > 200 {
		errs = append(errs, errors.New("indicator.type: want 1 to 200 bytes"))
	}
	if len(d.Status) > 200 {
		errs = append(errs, errors.New("indicator.status longer than 200"))
	}
	if d.Score < 0 || d.Score > 10 {
		errs = append(errs, fmt.Errorf("indicator.score %v: want 0 to 10", d.Score))
	}
	if d.UpdatedAt.IsZero() {
		errs = append(errs, errors.New("indicator.updated_at is required"))
	}
	for i, a := range d.Attributes {
		if a.Name == "" || a.ID < 0 || slices.Contains(a.Sources, "") {
			errs = append(errs, fmt.Errorf("indicator.attributes[%d]: want a name, an id >= 0 and named sources", i))
		}
	}
	return invalid(IndicatorV1, errs)
}

// Write is a write.v1 message: exactly one of Indicator and Signature is
// set, as Kind says.
type Write struct {
	Schema    string          `json:"schema"`
	Kind      string          `json:"kind"`
	Instance  string          `json:"instance"`
	Indicator *IndicatorWrite `json:"indicator,omitempty"`
	Signature *SignatureWrite `json:"signature,omitempty"`
}

// IndicatorWrite sets the rows Source holds on an existing indicator, and
// optionally its status.
type IndicatorWrite struct {
	// ID is the indicator's ThreatQ id, or 0 for an indicator known by
	// value and type only (an ET IP list address), which the writer
	// upserts by value and type, taking the id consume answers.
	ID    int64  `json:"id"`
	Value string `json:"value"`
	Type  string `json:"type"`
	// Status is the status to set, as ThreatQ spells it; empty leaves it.
	Status string `json:"status,omitempty"`
	// FetchedStatus is the status the indicator had as fetched: the
	// writer PUTs Status only where it differs from this (or from what
	// ThreatQ's answer shows).
	FetchedStatus string `json:"fetched_status,omitempty"`
	Source        string `json:"source"`
	// Attributes are every row Source holds on the indicator: after
	// writing them the writer removes the rows listing Source alone that
	// are not among them (threatq.StaleRows).
	Attributes []Attribute `json:"attributes"`
	// RemoveAttributeIDs is deprecated and ignored: the writer reads the
	// rows and their sources itself. Old messages still decode.
	RemoveAttributeIDs []int64 `json:"remove_attribute_ids,omitempty"`
	// ReplaceStale is deprecated and ignored: every write, replays alike,
	// replaces Source's own stale rows.
	ReplaceStale bool `json:"replace_stale,omitempty"`
}

// SignatureWrite creates or updates a signature. Status, as ThreatQ
// spells it, is set by consume on a new signature and by a PUT on an
// existing one.
type SignatureWrite struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Type   string `json:"type"`
	Status string `json:"status"`
	// LastStatus is the status tqflow last wrote on this signature (the
	// signature-loader's state); empty when none.
	LastStatus string      `json:"last_status,omitempty"`
	Source     string      `json:"source"`
	Attributes []Attribute `json:"attributes,omitempty"`
}

// Validate checks what write.v1.json checks.
func (m *Write) Validate() error {
	var errs []error
	if m.Schema != WriteV1 {
		errs = append(errs, fmt.Errorf("schema is %q, want %q", m.Schema, WriteV1))
	}
	if !tokenRE.MatchString(m.Instance) {
		errs = append(errs, fmt.Errorf("instance %q: want 1 to 64 letters, digits, - or _", m.Instance))
	}
	switch m.Kind {
	case KindIndicator:
		if m.Indicator == nil || m.Signature != nil {
			errs = append(errs, errors.New("kind indicator: want an indicator and no signature"))
		}
	case KindSignature:
		if m.Signature == nil || m.Indicator != nil {
			errs = append(errs, errors.New("kind signature: want a signature and no indicator"))
		}
	default:
		errs = append(errs, fmt.Errorf("kind %q: want indicator or signature", m.Kind))
	}
	if w := m.Indicator; w != nil {
		if w.ID < 0 || w.Value == "" || w.Type == "" || w.Source == "" || w.Attributes == nil {
			errs = append(errs, errors.New("indicator: want id >= 0, value, type, source and attributes"))
		}
		if w.ID == 0 && (len(w.RemoveAttributeIDs) > 0 || w.ReplaceStale) {
			errs = append(errs, errors.New("indicator: id 0 (an indicator known by value and type only) cannot remove attribute rows"))
		}
		errs = append(errs, checkAttributes("indicator", w.Attributes)...)
		for _, id := range w.RemoveAttributeIDs {
			if id < 1 {
				errs = append(errs, fmt.Errorf("indicator.remove_attribute_ids: %d is not >= 1", id))
			}
		}
	}
	if s := m.Signature; s != nil {
		if s.Name == "" || s.Value == "" || s.Type == "" || s.Status == "" || s.Source == "" {
			errs = append(errs, errors.New("signature: want name, value, type, status and source"))
		}
		errs = append(errs, checkAttributes("signature", s.Attributes)...)
	}
	return invalid(WriteV1, errs)
}

func checkAttributes(where string, attrs []Attribute) []error {
	var errs []error
	for i, a := range attrs {
		if a.Name == "" || len(a.Name) > 200 || a.Value == "" || len(a.Value) > 10000 || a.ID != 0 {
			errs = append(errs, fmt.Errorf("%s.attributes[%d] (%q): want a name of 1 to 200 bytes, a value of 1 to 10000 and no id", where, i, a.Name))
		}
	}
	return errs
}

// Ruleset is a ruleset.v1 message: one rules file of a tarball in the
// object store.
type Ruleset struct {
	Schema    string     `json:"schema"`
	Instance  string     `json:"instance"`
	Source    string     `json:"source"`
	Flavor    string     `json:"flavor"`
	MD5       string     `json:"md5"`
	Object    string     `json:"object"`
	File      string     `json:"file"`
	Files     int        `json:"files,omitempty"`
	FetchedAt *time.Time `json:"fetched_at,omitempty"`
}

var md5RE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Validate checks what ruleset.v1.json checks.
func (m *Ruleset) Validate() error {
	var errs []error
	if m.Schema != RulesetV1 {
		errs = append(errs, fmt.Errorf("schema is %q, want %q", m.Schema, RulesetV1))
	}
	if !tokenRE.MatchString(m.Instance) {
		errs = append(errs, fmt.Errorf("instance %q: want 1 to 64 letters, digits, - or _", m.Instance))
	}
	if m.Source == "" || m.Flavor == "" || m.Object == "" || m.File == "" {
		errs = append(errs, errors.New("want source, flavor, object and file"))
	}
	if !md5RE.MatchString(m.MD5) {
		errs = append(errs, fmt.Errorf("md5 %q: want 32 lower-case hex digits", m.MD5))
	}
	if m.Files < 0 {
		errs = append(errs, errors.New("files must be >= 1 when set"))
	}
	return invalid(RulesetV1, errs)
}

func invalid(schema string, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w %s: %w", ErrInvalid, schema, errors.Join(errs...))
}

// Decode decodes data strictly into v (unknown fields and trailing data are
// errors) and validates it. Every error wraps [ErrInvalid].
func Decode[T interface{ Validate() error }](data []byte, v T) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: decode: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: trailing data after the message", ErrInvalid)
	}
	return v.Validate()
}
