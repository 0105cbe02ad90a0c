package ctr

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"time"

	"github.com/tqflow/tqflow/pkg/internal/jsonlit"
)

// Response is one decoded enrich answer (observe or deliberate), or several
// merged when a long list was sent in chunks.
type Response struct {
	// Modules holds each module's answer, in the order CTR gave them.
	Modules []Module
	// Errors holds the per-module errors CTR reported beside the data of
	// the other modules. They are not fatal: log them, one per module.
	Errors []ModuleError
	// Observables lists what was asked, as the caller gave it (duplicates
	// included): Results has at most one entry for each.
	Observables []Observable
	// Skipped lists the observables that were not sent: a type CTR does
	// not know (not in the 63-value enum) or an empty value.
	Skipped []Observable
}

// Module is one module's answer: its identity and the CTIM documents it
// returned. Collections other than verdicts, judgements and sightings
// (indicators, relationships, malwares, …) are only counted.
type Module struct {
	// Name is the instance's display name ("module"), which the customer
	// may rename; else the legacy "module-type" class name; else TypeID.
	Name string
	// InstanceID is the org's configured instance ("module_instance_id").
	InstanceID string
	// TypeID is the integration kind ("module_type_id").
	TypeID string
	// LegacyType is the 2020-era "module-type" class name, when present.
	LegacyType string
	// Counts maps each collection present to its "count" (a JSON number
	// that may be a float).
	Counts map[string]float64
	// Verdicts, Judgements and Sightings are the documents decoded.
	Verdicts   []Verdict
	Judgements []Judgement
	Sightings  []Sighting
	// Indicators and Relationships are the CTIM indicators and the links
	// between documents, read to find the title of the indicator a
	// judgement is an element of (Global Threat Intelligence gives no
	// reason, ctr.md corrections 7).
	Indicators    []Indicator
	Relationships []Relationship
}

// Indicator is a CTIM indicator: a named pattern documents point to.
type Indicator struct {
	ID, Title string
}

// Relationship links two CTIM documents by id, e.g. a judgement
// "element-of" an indicator.
type Relationship struct {
	Type, SourceRef, TargetRef string
}

// Verdict is a CTIM verdict: the module's one disposition of an
// observable.
type Verdict struct {
	Observable      Observable
	Disposition     int
	DispositionName string
	JudgementID     string
	ValidTime       ValidTime
}

// Judgement is a CTIM judgement: one source's opinion of an observable.
type Judgement struct {
	ID                 string
	Observable         Observable
	Disposition        int
	DispositionName    string
	Priority           int
	Confidence         string
	Severity           string
	Source             string
	SourceURI          string
	Reason             string
	ReasonURI          string
	TLP                string
	ValidTime          ValidTime
	ExternalReferences []ExternalReference
}

// ExternalReference is a pointer to more about a CTIM document.
type ExternalReference struct {
	SourceName  string
	URL         string
	Description string
	ExternalID  string
}

// Sighting is a CTIM sighting of one or more observables.
type Sighting struct {
	Observables []Observable
	Description string
	Source      string
	SourceURI   string
	Relations   []Relation
}

// Relation is one observable relation inside a sighting; Origin names what
// produced it, e.g. "AbuseIPDB Enrichment Module".
type Relation struct {
	Origin    string
	OriginURI string
	Relation  string
	Source    Observable
	Related   Observable
}

// ValidTime is when a verdict or judgement holds. A zero End means no
// expiry; CTIM uses 2525-01-01 for "never" too.
type ValidTime struct {
	Start, End time.Time
}

// expired reports whether the validity ended at or before now.
func (v ValidTime) expired(now time.Time) bool {
	return !v.End.IsZero() && !now.Before(v.End)
}

// ModuleError is one module's failure reported inside a 200 answer.
type ModuleError struct {
	Module     string
	InstanceID string
	TypeID     string
	// Code is e.g. "too many requests", "request timeout", "authorization
	// error".
	Code    string
	Message string
	// Type is fatal, error or warning.
	Type string
}

// DecodeResponse decodes an enrich answer body. It is lenient, as the
// contract asks: unknown keys are ignored, module ids are optional, counts
// may be floats, a field of an unexpected JSON type is left empty and a
// document that is not an object is skipped. Only malformed JSON or a body
// that is not an object with a "data" array is an error.
//
// The body is decoded in one pass per module into plain structs: the
// standard decoder leaves a field of the wrong JSON type empty and goes on
// (reporting an UnmarshalTypeError, which is ignored here), which is the
// leniency wanted, without the re-validation every nested json.Unmarshal
// would cost.
func DecodeResponse(body []byte) (*Response, error) {
	var env struct {
		Data   []json.RawMessage `json:"data"`
		Errors json.RawMessage   `json:"errors"`
	}
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		if !json.Valid(b) {
			return nil, errors.New("malformed JSON")
		}
		return nil, errors.New("answer is not a JSON object")
	}
	if err := json.Unmarshal(b, &env); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) { // Only "data" can have the wrong type.
			return nil, errors.New(`"data" is not an array`)
		}
		return nil, err
	}
	r := &Response{}
	for _, e := range env.Data {
		var m rawModule
		if !isObject(e) || !lenient(json.Unmarshal(e, &m)) {
			continue
		}
		r.Modules = append(r.Modules, m.module())
	}
	var errs []json.RawMessage
	if json.Unmarshal(env.Errors, &errs) != nil {
		errs = nil // Not an array: no module errors to report.
	}
	for _, e := range errs {
		var me rawModuleError
		if !isObject(e) || !lenient(json.Unmarshal(e, &me)) {
			continue
		}
		r.Errors = append(r.Errors, ModuleError{
			Module: string(me.Module), InstanceID: string(me.InstanceID), TypeID: string(me.TypeID),
			Code: string(me.Code), Message: string(me.Message), Type: string(me.Type),
		})
	}
	return r, nil
}

// lenient reports whether a decode succeeded, a field of the wrong JSON
// type (left empty) counting as success.
func lenient(err error) bool {
	var te *json.UnmarshalTypeError
	return err == nil || errors.As(err, &te)
}

func isObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// lstring is a string field that decodes to "" from any other JSON type.
type lstring string

func (s *lstring) UnmarshalJSON(b []byte) error {
	if v, ok := jsonlit.String(b); ok {
		*s = lstring(v)
	}
	return nil
}

// lnumber is a number field that also accepts a numeric string and decodes
// to 0 from anything else.
type lnumber float64

func (n *lnumber) UnmarshalJSON(b []byte) error {
	s, ok := jsonlit.String(b)
	if !ok {
		s = string(b) // A JSON number is valid strconv syntax; true, {…} are not.
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		*n = lnumber(f)
	}
	return nil
}

// ltime is an ISO-8601 timestamp of any precision; zero when absent or
// unreadable.
type ltime time.Time

func (t *ltime) UnmarshalJSON(b []byte) error {
	s, ok := jsonlit.String(b)
	if !ok {
		return nil
	}
	if v, err := time.Parse(time.RFC3339Nano, s); err == nil {
		*t = ltime(v)
	}
	return nil
}

// lslice is a list of T that skips elements failing to decode and decodes
// to nil from anything but an array. It is for small lists decoded on
// their own (error answers); inside an answer, plain slices do.
type lslice[T any] []T

func (s *lslice[T]) UnmarshalJSON(b []byte) error {
	var raws []json.RawMessage
	if json.Unmarshal(b, &raws) != nil {
		return nil
	}
	out := make([]T, 0, len(raws))
	for _, r := range raws {
		var v T
		if json.Unmarshal(r, &v) == nil {
			out = append(out, v)
		}
	}
	*s = out
	return nil
}

type rawObservable struct {
	Type  lstring `json:"type"`
	Value lstring `json:"value"`
}

func (o rawObservable) observable() Observable {
	return Observable{Type: string(o.Type), Value: string(o.Value)}
}

type rawValidTime struct {
	Start ltime `json:"start_time"`
	End   ltime `json:"end_time"`
}

func (v rawValidTime) validTime() ValidTime {
	return ValidTime{Start: time.Time(v.Start), End: time.Time(v.End)}
}

type rawModule struct {
	Module     lstring                  `json:"module"`
	LegacyType lstring                  `json:"module-type"`
	InstanceID lstring                  `json:"module_instance_id"`
	TypeID     lstring                  `json:"module_type_id"`
	Data       map[string]rawCollection `json:"data"`
}

type rawCollection struct {
	Count lnumber  `json:"count"`
	Docs  []rawDoc `json:"docs"`
}

// rawDoc holds the fields of the CTIM documents read (verdict, judgement,
// sighting) together, so that a collection decodes in the same pass as
// its module whatever its kind; the kind picks the fields that matter. The
// fields the kinds share have the same meaning and type in each.
type rawDoc struct {
	ID                 lstring         `json:"id"`
	Observable         rawObservable   `json:"observable"`
	Observables        []rawObservable `json:"observables"`
	Disposition        lnumber         `json:"disposition"`
	DispositionName    lstring         `json:"disposition_name"`
	JudgementID        lstring         `json:"judgement_id"`
	Priority           lnumber         `json:"priority"`
	Confidence         lstring         `json:"confidence"`
	Severity           lstring         `json:"severity"`
	Source             lstring         `json:"source"`
	SourceURI          lstring         `json:"source_uri"`
	Reason             lstring         `json:"reason"`
	ReasonURI          lstring         `json:"reason_uri"`
	TLP                lstring         `json:"tlp"`
	Description        lstring         `json:"description"`
	Title              lstring         `json:"title"`
	RelationshipType   lstring         `json:"relationship_type"`
	SourceRef          lstring         `json:"source_ref"`
	TargetRef          lstring         `json:"target_ref"`
	ValidTime          rawValidTime    `json:"valid_time"`
	ExternalReferences []rawExtRef     `json:"external_references"`
	Relations          []rawRelation   `json:"relations"`
}

// docs returns a collection's documents, without those that were not
// objects: the decoder leaves them zero.
func (c rawCollection) docs() []*rawDoc {
	out := make([]*rawDoc, 0, len(c.Docs))
	for i := range c.Docs {
		if d := &c.Docs[i]; !reflect.ValueOf(d).Elem().IsZero() {
			out = append(out, d)
		}
	}
	return out
}

type rawExtRef struct {
	SourceName  lstring `json:"source_name"`
	URL         lstring `json:"url"`
	Description lstring `json:"description"`
	ExternalID  lstring `json:"external_id"`
}

type rawRelation struct {
	Origin    lstring       `json:"origin"`
	OriginURI lstring       `json:"origin_uri"`
	Relation  lstring       `json:"relation"`
	Source    rawObservable `json:"source"`
	Related   rawObservable `json:"related"`
}

type rawModuleError struct {
	Module     lstring `json:"module"`
	InstanceID lstring `json:"module_instance_id"`
	TypeID     lstring `json:"module_type_id"`
	Code       lstring `json:"code"`
	Message    lstring `json:"message"`
	Type       lstring `json:"type"`
}

func (m rawModule) module() Module {
	mod := Module{
		Name:       string(m.Module),
		InstanceID: string(m.InstanceID),
		TypeID:     string(m.TypeID),
		LegacyType: string(m.LegacyType),
		Counts:     make(map[string]float64, len(m.Data)),
	}
	if mod.Name == "" {
		mod.Name = mod.LegacyType
	}
	if mod.Name == "" {
		mod.Name = mod.TypeID
	}
	for name, c := range m.Data {
		mod.Counts[name] = float64(c.Count)
	}
	for _, v := range m.Data["verdicts"].docs() {
		mod.Verdicts = append(mod.Verdicts, Verdict{
			Observable:      v.Observable.observable(),
			Disposition:     int(v.Disposition),
			DispositionName: string(v.DispositionName),
			JudgementID:     string(v.JudgementID),
			ValidTime:       v.ValidTime.validTime(),
		})
	}
	for _, j := range m.Data["judgements"].docs() {
		jd := Judgement{
			ID:              string(j.ID),
			Observable:      j.Observable.observable(),
			Disposition:     int(j.Disposition),
			DispositionName: string(j.DispositionName),
			Priority:        int(j.Priority),
			Confidence:      string(j.Confidence),
			Severity:        string(j.Severity),
			Source:          string(j.Source),
			SourceURI:       string(j.SourceURI),
			Reason:          string(j.Reason),
			ReasonURI:       string(j.ReasonURI),
			TLP:             string(j.TLP),
			ValidTime:       j.ValidTime.validTime(),
		}
		for _, r := range j.ExternalReferences {
			jd.ExternalReferences = append(jd.ExternalReferences, ExternalReference{
				SourceName: string(r.SourceName), URL: string(r.URL),
				Description: string(r.Description), ExternalID: string(r.ExternalID),
			})
		}
		mod.Judgements = append(mod.Judgements, jd)
	}
	for _, d := range m.Data["indicators"].docs() {
		mod.Indicators = append(mod.Indicators, Indicator{ID: string(d.ID), Title: string(d.Title)})
	}
	for _, d := range m.Data["relationships"].docs() {
		mod.Relationships = append(mod.Relationships, Relationship{
			Type: string(d.RelationshipType), SourceRef: string(d.SourceRef), TargetRef: string(d.TargetRef),
		})
	}
	for _, s := range m.Data["sightings"].docs() {
		sg := Sighting{
			Description: string(s.Description),
			Source:      string(s.Source),
			SourceURI:   string(s.SourceURI),
		}
		for _, o := range s.Observables {
			sg.Observables = append(sg.Observables, o.observable())
		}
		for _, r := range s.Relations {
			sg.Relations = append(sg.Relations, Relation{
				Origin: string(r.Origin), OriginURI: string(r.OriginURI), Relation: string(r.Relation),
				Source: r.Source.observable(), Related: r.Related.observable(),
			})
		}
		mod.Sightings = append(mod.Sightings, sg)
	}
	return mod
}
