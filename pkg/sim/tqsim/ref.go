package tqsim

import (
	"encoding/json"
	"net/http"
	"strings"
)

// named is a type or status.
type named struct {
	id          int
	name, class string
	desc        string
}

// refList is one list of reference data, with its answer pre-rendered.
type refList struct {
	items []named
	// exact says names match only as spelt (statuses: the vendor SDK's
	// getstatusidbyname compares names exactly, corrections 4); else any
	// case matches (types).
	exact  bool
	byName map[string]int // name (lower-cased unless exact) -> index
	byID   map[int]int    // id -> index
	answer []byte
}

func newRefList(items []named, exact bool, render func(named) map[string]any) refList {
	l := refList{items: items, exact: exact, byName: map[string]int{}, byID: map[int]int{}}
	data := make([]map[string]any, len(items))
	for i, it := range items {
		l.byName[l.key(it.name)] = i
		l.byID[it.id] = i
		data[i] = render(it)
	}
	l.answer, _ = json.Marshal(map[string]any{"total": len(items), "data": data})
	return l
}

func (l *refList) key(name string) string {
	if l.exact {
		return name
	}
	return strings.ToLower(strings.TrimSpace(name))
}

// index returns the index of the item named name: as spelt for an exact
// list, in any case otherwise.
func (l *refList) index(name string) (int, bool) {
	i, ok := l.byName[l.key(name)]
	return i, ok
}

// refData is the instance's types and statuses.
type refData struct {
	indTypes, indStatuses refList
	sigTypes, sigStatuses refList
	objects               []byte
}

// indicatorTypes are a stock instance's indicator types (contract §3, from
// /api/objects), with their class.
var indicatorTypes = []named{
	{name: "ASN", class: "network"}, {name: "Binary String", class: "host"}, {name: "CIDR Block", class: "network"},
	{name: "CVE", class: "host"}, {name: "Email Address", class: "network"}, {name: "Email Attachment", class: "network"},
	{name: "Email Subject", class: "network"}, {name: "File Mapping", class: "host"}, {name: "File Path", class: "host"},
	{name: "Filename", class: "host"}, {name: "FQDN", class: "network"}, {name: "Fuzzy Hash", class: "host"},
	{name: "GOST Hash", class: "host"}, {name: "Hash ION", class: "host"}, {name: "IP Address", class: "network"},
	{name: "IPv6 Address", class: "network"}, {name: "MAC Address", class: "network"}, {name: "MD5", class: "host"},
	{name: "Mutex", class: "host"}, {name: "Password", class: "host"}, {name: "Registry Key", class: "host"},
	{name: "Service Name", class: "host"}, {name: "SHA-1", class: "host"}, {name: "SHA-256", class: "host"},
	{name: "SHA-384", class: "host"}, {name: "SHA-512", class: "host"}, {name: "String", class: "host"},
	{name: "x509 Serial", class: "network"}, {name: "x509 Subject", class: "network"}, {name: "URL", class: "network"},
	{name: "URL Path", class: "network"}, {name: "User-agent", class: "network"}, {name: "Username", class: "host"},
	{name: "X-Mailer", class: "network"},
}

// indicatorStatuses are a stock instance's indicator statuses, plus a
// customer-made one.
var indicatorStatuses = []named{
	{name: "Active", desc: "Poses a threat and is being exported to detection tools."},
	{name: "Expired", desc: "No longer poses a serious threat."},
	{name: "Indirect", desc: "Associated to an active indicator or event (i.e. pDNS)."},
	{name: "Review", desc: "Requires further analysis."},
	{name: "Whitelisted", desc: "Poses NO risk and should never be deployed."},
	{name: "False Positive", desc: "Reported in error."},
}

var signatureTypes = []string{"Bro", "Custom", "Cybox", "OpenIOC", "Regex", "Snort", "STIX Indicator Pattern", "YARA"}

var signatureStatuses = []string{"Active", "Expired", "Indirect", "Non-malicious", "Review", "Whitelisted"}

const refStamp = "2017-04-17 04:34:56"

// newRefData numbers the reference data away from 1..n: ids differ per
// instance, and a client that assumes them breaks here.
func newRefData(shift int, suricata bool) refData {
	var d refData
	its := append([]named(nil), indicatorTypes...)
	for i := range its {
		its[i].id = shift + 1 + 2*i
	}
	d.indTypes = newRefList(its, false, func(n named) map[string]any {
		return map[string]any{"id": n.id, "name": n.name, "class": n.class, "score": nil, "wildcard_matching": "Y", "created_at": refStamp, "updated_at": refStamp}
	})
	iss := append([]named(nil), indicatorStatuses...)
	for i := range iss {
		iss[i].id = 2*shift + 1 + i
	}
	d.indStatuses = newRefList(iss, true, func(n named) map[string]any {
		return map[string]any{"id": n.id, "name": n.name, "description": n.desc, "user_editable": "N", "visible": "Y",
			"include_in_export": yn(n.name == "Active"), "protected": "Y", "created_at": refStamp, "updated_at": refStamp}
	})
	sts := signatureTypes
	if suricata {
		sts = append(append([]string(nil), sts...), "Suricata")
	}
	var sigTypes []named
	for i, n := range sts {
		sigTypes = append(sigTypes, named{id: 3*shift + 1 + i, name: n})
	}
	d.sigTypes = newRefList(sigTypes, false, func(n named) map[string]any { return map[string]any{"id": n.id, "name": n.name} })
	var sigStatuses []named
	for i, n := range signatureStatuses {
		sigStatuses = append(sigStatuses, named{id: 4*shift + 1 + i, name: n})
	}
	d.sigStatuses = newRefList(sigStatuses, true, func(n named) map[string]any { return map[string]any{"id": n.id, "name": n.name} })
	list := func(l refList) []map[string]any {
		out := make([]map[string]any, len(l.items))
		for i, n := range l.items {
			out[i] = map[string]any{"id": n.id, "name": n.name}
		}
		return out
	}
	d.objects, _ = json.Marshal(map[string]any{"data": []map[string]any{
		{"collection": "indicators", "name": "indicator", "display_name": "Indicator", "display_name_plural": "Indicators",
			"types": list(d.indTypes), "statuses": list(d.indStatuses)},
		{"collection": "signatures", "name": "signature", "display_name": "Signature", "display_name_plural": "Signatures",
			"types": list(d.sigTypes), "statuses": list(d.sigStatuses)},
		{"collection": "events", "name": "event", "display_name": "Event", "display_name_plural": "Events", "types": []any{}, "statuses": []any{}},
		{"collection": "adversaries", "name": "adversary", "display_name": "Adversary", "display_name_plural": "Adversaries", "types": []any{}, "statuses": []any{}},
	}})
	return d
}

func yn(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}

// serveRef serves a reference list; ?name= filters it (any case).
func (s *Server) serveRef(l *refList) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if name := r.URL.Query().Get("name"); name != "" {
			i, ok := l.index(name)
			if !ok {
				writeRaw(w, http.StatusOK, []byte(`{"total":0,"data":[]}`))
				return
			}
			var all struct {
				Data []json.RawMessage `json:"data"`
			}
			_ = json.Unmarshal(l.answer, &all)
			writeJSON(w, http.StatusOK, map[string]any{"total": 1, "data": []json.RawMessage{all.Data[i]}})
			return
		}
		writeRaw(w, http.StatusOK, l.answer)
	}
}

func (s *Server) serveSigStatuses(w http.ResponseWriter, r *http.Request) {
	if s.opts.NoSignatureStatusRoute {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": []string{"Route not found."}})
		return
	}
	s.serveRef(&s.ref.sigStatuses)(w, r)
}

func (s *Server) serveObjects(w http.ResponseWriter, _ *http.Request) {
	writeRaw(w, http.StatusOK, s.ref.objects)
}

// TypeID returns the id of the indicator type named name on this instance,
// or 0.
func (s *Server) TypeID(name string) int {
	if i, ok := s.ref.indTypes.index(name); ok {
		return s.ref.indTypes.items[i].id
	}
	return 0
}

// StatusID returns the id of the indicator status named name, or 0.
func (s *Server) StatusID(name string) int {
	if i, ok := s.ref.indStatuses.index(name); ok {
		return s.ref.indStatuses.items[i].id
	}
	return 0
}

// SignatureTypeID returns the id of the signature type named name, or 0.
func (s *Server) SignatureTypeID(name string) int {
	if i, ok := s.ref.sigTypes.index(name); ok {
		return s.ref.sigTypes.items[i].id
	}
	return 0
}

// SignatureStatusID returns the id of the signature status named name, or
// 0.
func (s *Server) SignatureStatusID(name string) int {
	if i, ok := s.ref.sigStatuses.index(name); ok {
		return s.ref.sigStatuses.items[i].id
	}
	return 0
}
