package ctrsim

import (
	"cmp"
	"slices"
	"strconv"
)

func cmpOr(a, b string) string { return cmp.Or(a, b) }

// Attribute is one ThreatQ attribute row a correct enricher writes for
// what this server knows: a name and a value.
type Attribute struct {
	Name, Value string
}

// defaultOrigin is the Origin of a module's context that names no sighting
// relation origin.
const defaultOrigin = "Cisco Threat Response"

// Attributes returns, from the knowledge base alone, the ThreatQ attribute
// rows the contract's mapping (ctr.md §8 and its corrections) gives for
// obs: for every module that knows obs and handles its type, in the order
// modules were registered, its "CTR Module" row; "Disposition" from the
// module's verdict; Confidence, Severity, Priority, Source and Reference
// from the judgement the verdict was chosen from; Description from that
// judgement's reason, else the title of the indicator it is linked to
// (Global Threat Intelligence), else the module's sighting; Origin from
// the sighting's relation, else "Cisco Threat Response". A module whose
// verdict has no judgement gives CTR Module and Disposition only. A
// sightings-only
// module gives CTR Module, Description, Source, Origin and Reference from
// its sighting (Source and Reference from it only then). Rows equal in name and value are given once, as ThreatQ
// keeps one row per (name, value). Nil when nothing is known.
//
// It is the end-to-end tests' oracle: it reads the contexts tests added,
// never an answer, so it does not share a line with the client it checks.
// Judgements whose ValidUntil has passed are ignored. Call it with no
// module errors in mind: it says what CTR knows, not what one answer said.
func (s *Server) Attributes(obs Observable) []Attribute {
	s.kbMu.RLock()
	defer s.kbMu.RUnlock()
	now := s.now()
	var out []Attribute
	seen := map[Attribute]bool{}
	add := func(name, value string) {
		a := Attribute{name, value}
		if value != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	entries := slices.Clone(s.kb[keyOf(obs)])
	slices.SortStableFunc(entries, func(a, b *entry) int { return a.mod - b.mod })
	for _, e := range entries {
		m := s.modules[e.mod]
		if m.handles != nil && !m.handles[e.typ] {
			continue
		}
		win, winPrio := -1, -1
		var sg Sighting // the first non-empty value of each field
		sighted := false
		for i, mc := range e.ctxs {
			if x := mc.Sighting; x != nil {
				sighted = true
				sg.Description = cmpOr(sg.Description, x.Description)
				sg.Source = cmpOr(sg.Source, x.Source)
				sg.SourceURI = cmpOr(sg.SourceURI, x.SourceURI)
				sg.Origin = cmpOr(sg.Origin, x.Origin)
			}
			if mc.Disposition == 0 {
				continue
			}
			if j := mc.Judgement; j != nil && !j.ValidUntil.IsZero() && !now.Before(j.ValidUntil) {
				continue
			}
			prio := -1
			if mc.Judgement != nil {
				prio = mc.Judgement.Priority
			}
			if win < 0 || prio > winPrio || (prio == winPrio && mc.Disposition < e.ctxs[win].Disposition) {
				win, winPrio = i, prio
			}
		}
		if win < 0 && !sighted {
			continue
		}
		add("CTR Module", m.name)
		var j *Judgement
		if win >= 0 {
			add("Disposition", dispositionNames[e.ctxs[win].Disposition])
			j = e.ctxs[win].Judgement
			if j == nil { // A verdict alone: nothing more.
				continue
			}
		}
		var desc, source, ref string
		if j != nil {
			add("Confidence", j.Confidence)
			add("Severity", j.Severity)
			desc, source, ref = j.Reason, j.Source, j.SourceURI
			if desc == "" {
				desc = j.Indicator
			}
		}
		desc = cmpOr(desc, sg.Description)
		if j == nil { // sightings only
			source, ref = sg.Source, sg.SourceURI
		}
		origin := cmpOr(sg.Origin, defaultOrigin)
		add("Description", desc)
		add("Source", source)
		if j != nil {
			add("Priority", strconv.Itoa(j.Priority))
		}
		add("Origin", origin)
		add("Reference", ref)
	}
	return out
}
