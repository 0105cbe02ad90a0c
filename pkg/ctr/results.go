package ctr

import (
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

// Result is what CTR says about one observable, chosen from one module.
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

// Results maps every observable asked (Response.Observables) to its
// result, judged against the current time. Observables without context
// are absent. See the package documentation for how one result is chosen.
func (r *Response) Results() map[Observable]Result {
	return r.ResultsFor(r.Observables, time.Now())
}

// ResultsFor maps each of obs to its result, treating judgements and
// verdicts whose valid_time ended at or before now as expired. Observables
// without context are absent. Documents are attributed by their
// observable (or a sighting's observables), case-insensitively for
// hashes, domains, hostnames, e-mail, IPv6 and MAC addresses.
func (r *Response) ResultsFor(obs []Observable, now time.Time) map[Observable]Result {
	idx := r.index()
	out := make(map[Observable]Result, len(obs))
	for _, o := range obs {
		if res, ok := idx.result(keyOf(o), now); ok {
			out[o] = res
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

func (x index) result(k key, now time.Time) (Result, bool) {
	best, found := ref{}, false
	for _, rf := range x.judgements[k] {
		j := &x.r.Modules[rf.mod].Judgements[rf.doc]
		if _, ok := dispositionNames[j.Disposition]; !ok || j.ValidTime.expired(now) {
			continue
		}
		if found {
			b := &x.r.Modules[best.mod].Judgements[best.doc]
			if !better(j.Priority, j.Disposition, j.ValidTime.Start, b.Priority, b.Disposition, b.ValidTime.Start) {
				continue
			}
		}
		best, found = rf, true
	}
	if found {
		return x.fromJudgement(k, best), true
	}
	for _, rf := range x.verdicts[k] {
		v := &x.r.Modules[rf.mod].Verdicts[rf.doc]
		if _, ok := dispositionNames[v.Disposition]; !ok || v.ValidTime.expired(now) {
			continue
		}
		if found {
			b := &x.r.Modules[best.mod].Verdicts[best.doc]
			if !better(0, v.Disposition, v.ValidTime.Start, 0, b.Disposition, b.ValidTime.Start) {
				continue
			}
		}
		best, found = rf, true
	}
	if !found {
		return Result{}, false
	}
	m := &x.r.Modules[best.mod]
	v := &m.Verdicts[best.doc]
	res := Result{Module: m.Name}
	res.add(AttrModule, m.Name)
	res.add(AttrDisposition, dispositionNames[v.Disposition])
	return res, true
}

func (x index) fromJudgement(k key, rf ref) Result {
	m := &x.r.Modules[rf.mod]
	j := &m.Judgements[rf.doc]
	res := Result{Module: m.Name}
	res.add(AttrModule, m.Name)
	res.add(AttrDisposition, dispositionNames[j.Disposition])
	res.add(AttrConfidence, j.Confidence)
	res.add(AttrSeverity, j.Severity)
	desc := j.Reason
	origin := ""
	for _, sr := range x.sightings[k] {
		if sr.mod != rf.mod {
			continue
		}
		s := &m.Sightings[sr.doc]
		if desc == "" {
			desc = s.Description
		}
		for _, rel := range s.Relations {
			if origin == "" && rel.Origin != "" {
				origin = rel.Origin
			}
		}
	}
	if origin == "" {
		origin = DefaultOrigin
	}
	res.add(AttrDescription, desc)
	res.add(AttrSource, j.Source)
	res.add(AttrPriority, strconv.Itoa(j.Priority))
	res.add(AttrOrigin, origin)
	reference := j.SourceURI
	if reference == "" {
		reference = j.ReasonURI
	}
	if reference == "" && len(j.ExternalReferences) > 0 {
		reference = j.ExternalReferences[0].URL
	}
	res.add(AttrReference, reference)
	return res
}

func (r *Result) add(name, value string) {
	if value != "" {
		r.Attributes = append(r.Attributes, Attribute{Name: name, Value: value})
	}
}

// ErrorCount returns the number of per-module errors in the answer.
func (r *Response) ErrorCount() int { return len(r.Errors) }
