package ctr

import (
	"cmp"
	"strconv"
	"time"
)

// Attribute names written to ThreatQ, exactly as the ThreatQ integration
// names them.
const (
	AttrModule      = "CTR Module"
	AttrDisposition = "Disposition"
	AttrConfidence  = "Confidence"
	AttrSeverity    = "Severity"
	AttrDescription = "Description"
	AttrSource      = "Source"
	AttrPriority    = "Priority"
	AttrOrigin      = "Origin"
	AttrReference   = "Reference"
)

// DefaultOrigin is the Origin of a result whose module reported no
// sighting relation origin for the observable.
const DefaultOrigin = "Cisco Threat Response"

// dispositionNames maps CTIM disposition numbers to their names. The name
// is always derived from the number: disposition_name is optional.
var dispositionNames = map[int]string{1: "Clean", 2: "Malicious", 3: "Suspicious", 4: "Common", 5: "Unknown"}

// DispositionName returns the CTIM name of a disposition number, and false
// for a number outside 1..5.
func DispositionName(d int) (string, bool) {
	n, ok := dispositionNames[d]
	return n, ok
}

// Attribute is one ThreatQ attribute: a name and a value.
type Attribute struct {
	Name, Value string
}

// Result is what one module says about one observable.
type Result struct {
	// Module is the display name of the module the context came from; it
	// is also the "CTR Module" attribute.
	Module string
	// Attributes holds the attributes to write, in a fixed order (CTR
	// Module, Disposition, Confidence, Severity, Description, Source,
	// Priority, Origin, Reference), each with a non-empty value.
	Attributes []Attribute
}

// Value returns the value of the named attribute, or "".
func (r Result) Value(name string) string {
	for _, a := range r.Attributes {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// Results maps every observable asked (Response.Observables) to the
// results of the modules with context for it, judged against the current
// time. Observables without context are absent. See the package
// documentation for how a module's result is built.
func (r *Response) Results() map[Observable][]Result {
	return r.ResultsFor(r.Observables, time.Now())
}

// ResultsFor maps each of obs, exactly as given, to one result per module
// with context for it (in the order of Response.Modules), treating
// judgements and verdicts whose valid_time ended at or before now as
// expired. Observables without context are absent. Documents are
// attributed by their observable (or a sighting's observables): the value
// as sent, folded only for types whose values are case-insensitive by
// nature (hashes, domains, hostnames, e-mail, IPv6 and MAC addresses), so
// two URLs that differ in case are two observables (ctr.md, corrections 8).
func (r *Response) ResultsFor(obs []Observable, now time.Time) map[Observable][]Result {
	idx := r.index()
	out := make(map[Observable][]Result, len(obs))
	for _, o := range obs {
		k := keyOf(o)
		for mi := range r.Modules {
			if res, ok := idx.result(mi, k, now); ok {
				out[o] = append(out[o], res)
			}
		}
	}
	return out
}

// ref points at a document: the module's position in Response.Modules and
// the document's position in its collection.
type ref struct{ mod, doc int }

type index struct {
	r          *Response
	judgements map[key][]ref
	verdicts   map[key][]ref
	sightings  map[key][]ref
}

func (r *Response) index() index {
	x := index{r: r, judgements: map[key][]ref{}, verdicts: map[key][]ref{}, sightings: map[key][]ref{}}
	for mi, m := range r.Modules {
		for di, j := range m.Judgements {
			k := keyOf(j.Observable)
			x.judgements[k] = append(x.judgements[k], ref{mi, di})
		}
		for di, v := range m.Verdicts {
			k := keyOf(v.Observable)
			x.verdicts[k] = append(x.verdicts[k], ref{mi, di})
		}
		for di, s := range m.Sightings {
			seen := map[key]bool{}
			for _, o := range s.Observables {
				k := keyOf(o)
				if !seen[k] {
					seen[k] = true
					x.sightings[k] = append(x.sightings[k], ref{mi, di})
				}
			}
		}
	}
	return x
}

// better reports whether a candidate (priority, disposition, start) beats
// the best so far. Earlier candidates win full ties, so the choice does not
// depend on map order.
func better(p, d int, start time.Time, bp, bd int, bstart time.Time) bool {
	if p != bp {
		return p > bp
	}
	if d != bd {
		// CTIM's tie-break: Clean (1), Malicious (2), Suspicious (3),
		// Common (4), Unknown (5); the numbers are in that order.
		return d < bd
	}
	return start.After(bstart)
}

// result builds module mi's result for k: Disposition from the module's
// verdict (its judgements only when it has none), the other attributes
// from the judgement the verdict names, else its best judgement; a
// sightings-only module gives its sightings' fields.
func (x index) result(mi int, k key, now time.Time) (Result, bool) {
	m := &x.r.Modules[mi]
	var v *Verdict
	for _, rf := range x.verdicts[k] {
		if rf.mod != mi {
			continue
		}
		c := &m.Verdicts[rf.doc]
		if _, ok := dispositionNames[c.Disposition]; !ok || c.ValidTime.expired(now) {
			continue
		}
		if v == nil || better(0, c.Disposition, c.ValidTime.Start, 0, v.Disposition, v.ValidTime.Start) {
			v = c
		}
	}
	var j *Judgement
	for _, rf := range x.judgements[k] {
		if rf.mod != mi {
			continue
		}
		c := &m.Judgements[rf.doc]
		if _, ok := dispositionNames[c.Disposition]; !ok || c.ValidTime.expired(now) {
			continue
		}
		if v != nil && v.JudgementID != "" && c.ID == v.JudgementID {
			j = c
			break
		}
		if j == nil || better(c.Priority, c.Disposition, c.ValidTime.Start, j.Priority, j.Disposition, j.ValidTime.Start) {
			j = c
		}
	}
	var sightings []*Sighting
	for _, rf := range x.sightings[k] {
		if rf.mod == mi {
			sightings = append(sightings, &m.Sightings[rf.doc])
		}
	}
	sightingsOnly := !x.judged(mi, k) && len(sightings) > 0
	if v == nil && j == nil && !sightingsOnly {
		return Result{}, false
	}
	if j == nil && !sightingsOnly {
		sightings = nil // A verdict alone is a deliberate-style answer.
	}
	res := Result{Module: m.Name}
	res.add(AttrModule, m.Name)
	switch {
	case v != nil:
		res.add(AttrDisposition, dispositionNames[v.Disposition])
	case j != nil:
		res.add(AttrDisposition, dispositionNames[j.Disposition])
	}
	var desc, source, reference, priority string
	if j != nil {
		res.add(AttrConfidence, j.Confidence)
		res.add(AttrSeverity, j.Severity)
		desc, source, priority = j.Reason, j.Source, strconv.Itoa(j.Priority)
		if desc == "" {
			desc = m.indicatorTitle(j.ID)
		}
		reference = cmp.Or(j.SourceURI, j.ReasonURI)
		if reference == "" && len(j.ExternalReferences) > 0 {
			reference = j.ExternalReferences[0].URL
		}
	}
	origin := ""
	for _, s := range sightings {
		desc = cmp.Or(desc, s.Description)
		if sightingsOnly {
			source, reference = cmp.Or(source, s.Source), cmp.Or(reference, s.SourceURI)
		}
		for _, rel := range s.Relations {
			origin = cmp.Or(origin, rel.Origin)
		}
	}
	res.add(AttrDescription, desc)
	res.add(AttrSource, source)
	res.add(AttrPriority, priority)
	if j != nil || sightingsOnly {
		res.add(AttrOrigin, cmp.Or(origin, DefaultOrigin))
	}
	res.add(AttrReference, reference)
	return res, true
}

// judged reports whether module mi gave any verdict or judgement for k,
// expired or not: a module that did is not a sightings-only module, and
// its sightings alone are no context once its judgements expired.
func (x index) judged(mi int, k key) bool {
	for _, rf := range x.verdicts[k] {
		if rf.mod == mi {
			return true
		}
	}
	for _, rf := range x.judgements[k] {
		if rf.mod == mi {
			return true
		}
	}
	return false
}

// indicatorTitle returns the title of the first indicator the document id
// is linked to by a relationship, or "".
func (m *Module) indicatorTitle(id string) string {
	if id == "" {
		return ""
	}
	for _, rel := range m.Relationships {
		if rel.SourceRef != id {
			continue
		}
		for _, ind := range m.Indicators {
			if ind.ID == rel.TargetRef && ind.Title != "" {
				return ind.Title
			}
		}
	}
	return ""
}

func (r *Result) add(name, value string) {
	if value != "" {
		r.Attributes = append(r.Attributes, Attribute{Name: name, Value: value})
	}
}

// ErrorCount returns the number of per-module errors in the answer.
func (r *Response) ErrorCount() int { return len(r.Errors) }
