package tqsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tqflow/tqflow/pkg/sim"
)

// MaxConsumeItems is the most objects a consume call takes; more is
// refused with 400, as the server's payload limit does.
const MaxConsumeItems = 500

// defaultNewStatus is the status of an indicator or signature consumed
// without one.
const defaultNewStatus = "Review"

// ref is a type or status as writes send it: {"name": …}, a plain name,
// or an id (under the *_id key).
type ref struct {
	name  string
	id    int
	given bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		r.given = true
		return json.Unmarshal(b, &r.name)
	case len(b) > 0 && b[0] == '{':
		var o struct {
			ID   json.Number `json:"id"`
			Name string      `json:"name"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		r.given, r.name = true, o.Name
		if o.ID != "" {
			id, err := o.ID.Int64()
			if err != nil {
				return err
			}
			r.id = int(id)
		}
		return nil
	}
	var id int
	if err := json.Unmarshal(b, &id); err != nil {
		return err
	}
	r.given, r.id = true, id
	return nil
}

// resolve finds r (or the id idField gave) in l.
func (r ref) resolve(l *refList, id int) (int, bool) {
	if id != 0 {
		i, ok := l.byID[id]
		return i, ok
	}
	if r.id != 0 && r.name == "" {
		i, ok := l.byID[r.id]
		return i, ok
	}
	return l.index(r.name)
}

type sourceIn struct {
	Name string `json:"name"`
}

type attrIn struct {
	Name    string     `json:"name"`
	Value   scalar     `json:"value"`
	Sources []sourceIn `json:"sources"`
}

// scalar is a value sent as a string, a number or a boolean.
type scalar string

// UnmarshalJSON implements json.Unmarshaler.
func (s *scalar) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, (*string)(s))
	}
	if len(b) > 0 && (b[0] == '{' || b[0] == '[') {
		return fmt.Errorf("value is not a scalar")
	}
	if string(b) == "null" {
		*s = ""
		return nil
	}
	*s = scalar(b)
	return nil
}

type objectIn struct {
	Name        string     `json:"name"`
	Value       scalar     `json:"value"`
	Type        ref        `json:"type"`
	TypeID      int        `json:"type_id"`
	Status      ref        `json:"status"`
	StatusID    int        `json:"status_id"`
	Description *string    `json:"description"`
	Sources     []sourceIn `json:"sources"`
	Attributes  []attrIn   `json:"attributes"`
}

// decodeItems reads a consume body: an array, or a single object.
func decodeItems(body []byte) ([]objectIn, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '{' {
		var one objectIn
		if err := json.Unmarshal(body, &one); err != nil {
			return nil, err
		}
		return []objectIn{one}, nil
	}
	var items []objectIn
	err := json.Unmarshal(body, &items)
	return items, err
}

// checkAttrs validates attributes, adding errors under prefix.
func (s *Server) checkAttrs(errs fieldErrs, prefix string, as []attrIn) {
	for j, a := range as {
		p := prefix + "attributes." + strconv.Itoa(j) + "."
		if strings.TrimSpace(a.Name) == "" {
			errs.add(p+"name", "The attribute name field is required.")
		}
		if strings.TrimSpace(string(a.Value)) == "" {
			errs.add(p+"value", "The attribute value field is required.")
		} else if s.rejectedLocked(string(a.Value)) {
			errs.add(p+"value", "The attribute value format is invalid.")
		}
	}
}

// fieldErrs are validation errors by field, as [validation] answers them.
type fieldErrs map[string][]string

func (e fieldErrs) add(field, msg string) { e[field] = append(e[field], msg) }

// checkValue adds to errs under field what is wrong with the value v:
// empty, or refused by RejectValue (as is any of also).
func (s *Server) checkValue(errs fieldErrs, field, v string, also ...string) {
	switch {
	case strings.TrimSpace(v) == "":
		errs.add(field, "The value field is required.")
	case s.rejectedLocked(v) || slices.ContainsFunc(also, s.rejectedLocked):
		errs.add(field, "The value format is invalid.")
	}
}

// itemRefs are the lists a consume route resolves its items' type and
// status in, and how it names a bad type.
type itemRefs struct {
	types, statuses    *refList
	typeField, typeMsg string
}

// resolveItemLocked resolves it's type and status (-1 when not given) in
// refs, adding errors under the prefix p.
func (s *Server) resolveItemLocked(errs fieldErrs, p string, it objectIn, refs itemRefs) (typ, status int) {
	typ, ok := it.Type.resolve(refs.types, it.TypeID)
	if !ok {
		errs.add(p+refs.typeField, refs.typeMsg)
	}
	status = -1
	if it.Status.given || it.StatusID != 0 {
		if status, ok = it.Status.resolve(refs.statuses, it.StatusID); !ok {
			errs.add(p+"status", "The selected status is invalid.")
		}
	}
	s.checkAttrs(errs, p, it.Attributes)
	return typ, status
}

func firstSource(srcs []sourceIn) string {
	for _, s := range srcs {
		if s.Name != "" {
			return s.Name
		}
	}
	return ""
}

// addAttrLocked adds the row (name, value) attributed to src unless the
// object has it; a row already there gets src added to its sources, as a
// second feed reporting the same row does. It reports whether the row is
// new and whether src was added to an existing one.
func (s *Server) addAttrLocked(rows *[]attrRow, name, value, src string, now int64) (row *attrRow, added, sourced bool) {
	for i := range *rows {
		r := &(*rows)[i]
		if r.name == name && r.value == value {
			if src != "" && !slices.Contains(r.srcs, src) {
				r.srcs = append(slices.Clip(r.srcs), src)
				r.updated = now
				return r, false, true
			}
			return r, false, false
		}
	}
	var srcs []string
	if src != "" {
		srcs = []string{src}
	}
	*rows = append(*rows, attrRow{id: s.nextRow, name: name, value: value, srcs: srcs, created: now, updated: now})
	s.nextRow++
	return &(*rows)[len(*rows)-1], true, false
}

// addAttrsLocked adds the attributes as to rows, each with its first
// source or else the object's (srcs), calling added for each new row and
// sourced for each existing row that gained a source.
func (s *Server) addAttrsLocked(rows *[]attrRow, as []attrIn, srcs []sourceIn, now int64, added, sourced func(*attrRow)) {
	for _, a := range as {
		src := firstSource(a.Sources)
		if src == "" {
			src = firstSource(srcs)
		}
		row, isNew, gained := s.addAttrLocked(rows, a.Name, string(a.Value), src, now)
		switch {
		case isNew:
			added(row)
		case gained:
			sourced(row)
		}
	}
}

// addIndAttrsLocked adds it's attributes to in, touching it and recording
// each new row.
func (s *Server) addIndAttrsLocked(in *indicator, it objectIn, now int64) {
	s.addAttrsLocked(&in.attrs, it.Attributes, it.Sources, now, func(row *attrRow) {
		in.touched = now
		s.record("attribute.add", indObject(in.id), row.name, row.value)
	}, func(row *attrRow) {
		in.touched = now
		s.recordRow("attribute.source.add", indObject(in.id), row)
	})
}

// setStatusLocked sets in's status to st, unless st is -1 (not given) or
// in's already.
func (s *Server) setStatusLocked(in *indicator, st int, now int64) {
	if st < 0 || st == in.status {
		return
	}
	s.mutateLocked(in, false, func() { in.status, in.updated, in.touched = st, now, now })
	s.record("status.set", indObject(in.id), "status", s.ref.indStatuses.items[st].name)
}

func addSource(srcs []string, name string) ([]string, bool) {
	if name == "" || slices.Contains(srcs, name) {
		return srcs, false
	}
	return append(slices.Clip(srcs), name), true
}

func (s *Server) record(op, object, name, value string) {
	s.Ledger.Record(sim.Entry{System: System, Op: op, Object: object, Name: name, Value: value})
}

// recordRow records a change to an attribute row with the row's sources.
func (s *Server) recordRow(op, object string, row *attrRow) {
	s.Ledger.Record(sim.Entry{System: System, Op: op, Object: object, Name: row.name, Value: row.value, Sources: slices.Clone(row.srcs)})
}

func indObject(id int64) string { return "indicator/" + strconv.FormatInt(id, 10) }

// consumeIndicators implements POST /api/indicators/consume: an upsert by
// (type, value). The batch is validated as a whole first: one bad item
// refuses the batch with a 400 and changes nothing.
func (s *Server) consumeIndicators(w http.ResponseWriter, r *http.Request) {
	items, ok := decodeConsume(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := fieldErrs{}
	types := make([]int, len(items))
	statuses := make([]int, len(items))
	refs := itemRefs{&s.ref.indTypes, &s.ref.indStatuses, "type", "The selected type is invalid."}
	for i, it := range items {
		p := strconv.Itoa(i) + "."
		s.checkValue(errs, p+"value", strings.TrimSpace(string(it.Value)))
		types[i], statuses[i] = s.resolveItemLocked(errs, p, it, refs)
	}
	if len(errs) > 0 {
		validation(w, errs)
		return
	}
	now := s.now().Unix()
	if s.sorted && len(items) > maxIncremental {
		// A bulk write moves many indicators: one sort at the next query
		// (if one comes) costs less than slice surgery for each, the same
		// trade as Touch makes.
		s.sorted = false
		s.gen++
	}
	out := make([]map[string]any, len(items))
	for i, it := range items {
		v := strings.TrimSpace(string(it.Value))
		k := ikey{types[i], v}
		in := s.byKey[k]
		existing := in != nil
		if in == nil {
			st := statuses[i]
			if st < 0 {
				st, _ = s.ref.indStatuses.index(defaultNewStatus)
			}
			in = &indicator{id: s.nextInd, value: v, typ: types[i], status: st, created: now, updated: now, touched: now}
			for s.inds[in.id] != nil {
				in.id++
			}
			s.nextInd = in.id + 1
			s.inds[in.id] = in
			s.byKey[k] = in
			s.mutateLocked(in, true, func() {})
			s.record("indicator.create", indObject(in.id), s.ref.indTypes.items[in.typ].name, in.value)
		}
		// The status of an item applies to a new indicator only: an
		// existing one keeps its own (corrections 1; the vendor's apps set
		// it with PUT /api/indicators/{id} after consuming).
		if it.Description != nil && *it.Description != in.desc {
			in.desc = *it.Description
		}
		for _, src := range it.Sources {
			var added bool
			if in.sources, added = addSource(in.sources, src.Name); added {
				in.touched = now
			}
		}
		s.addIndAttrsLocked(in, it, now)
		out[i] = map[string]any{
			"id": in.id, "value": in.value, "type_id": s.ref.indTypes.items[in.typ].id,
			"status_id": s.ref.indStatuses.items[in.status].id, "existing": existing,
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": len(out), "data": out})
}

// indicatorOf returns the indicator of the {id} path value, or answers
// 404 and returns nil; s.mu held.
func (s *Server) indicatorOf(w http.ResponseWriter, r *http.Request) *indicator {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if in := s.inds[id]; err == nil && in != nil {
		return in
	}
	notFound(w)
	return nil
}

// serveIndicator implements GET /api/indicators/{id}; "with" embeds
// attributes, sources and the score object.
func (s *Server) serveIndicator(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in := s.indicatorOf(w, r)
	if in == nil {
		return
	}
	b := append([]byte(nil), `{"data":`...)
	b = s.appendIndicator(b, in, projectionOf(nil, r.URL.Query().Get("with")))
	writeRaw(w, http.StatusOK, append(b, '}'))
}

// updateIndicator implements PUT /api/indicators/{id}: the status as
// status_id, {"status": {"name"}} or {"status": "Name"}, and attributes and
// sources to add. It answers the indicator as it is after the change,
// embedding what "with" asks for; without "with" (or with
// Options.PutIgnoresWith) its attributes and sources, the rows without
// their own sources.
func (s *Server) updateIndicator(w http.ResponseWriter, r *http.Request) {
	var it objectIn
	if !decodeObject(w, r, &it) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.indicatorOf(w, r)
	if in == nil {
		return
	}
	errs := fieldErrs{}
	st := -1
	if it.Status.given || it.StatusID != 0 {
		var ok bool
		if st, ok = it.Status.resolve(&s.ref.indStatuses, it.StatusID); !ok {
			errs.add("status_id", "The selected status id is invalid.")
		}
	}
	s.checkAttrs(errs, "", it.Attributes)
	if len(errs) > 0 {
		validation(w, errs)
		return
	}
	now := s.now().Unix()
	s.setStatusLocked(in, st, now)
	for _, src := range it.Sources {
		in.sources, _ = addSource(in.sources, src.Name)
	}
	s.addIndAttrsLocked(in, it, now)
	with := r.URL.Query().Get("with")
	if with == "" || s.opts.PutIgnoresWith {
		with = "attributes,sources"
	}
	b := append([]byte(nil), `{"data":`...)
	b = s.appendIndicator(b, in, projectionOf(nil, with))
	writeRaw(w, http.StatusOK, append(b, '}'))
}

// serveAttributes implements GET /api/indicators/{id}/attributes, paged
// by limit and offset.
func (s *Server) serveAttributes(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in := s.indicatorOf(w, r)
	if in == nil {
		return
	}
	q := r.URL.Query()
	offset, _ := strconv.Atoi(q.Get("offset"))
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = defaultLimit
	}
	offset = min(max(offset, 0), len(in.attrs))
	rows := in.attrs[offset:min(offset+limit, len(in.attrs))]
	withSrcs := projectionOf(nil, q.Get("with")).srcs
	b := append([]byte(nil), `{"total":`...)
	b = strconv.AppendInt(b, int64(len(in.attrs)), 10)
	b = append(b, `,"data":`...)
	if len(rows) == 0 {
		b = append(b, s.pageEmpty...)
	} else {
		b = append(b, '[')
		for i := range rows {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendAttr(b, in.id, &rows[i], withSrcs)
		}
		b = append(b, ']')
	}
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(limit), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, int64(offset), 10)
	writeRaw(w, http.StatusOK, append(b, '}'))
}

// addAttribute implements POST /api/indicators/{id}/attributes. A row of
// the same name and value already there is returned as is (200); a new
// one is 201.
func (s *Server) addAttribute(w http.ResponseWriter, r *http.Request) {
	var a attrIn
	if !decodeObject(w, r, &a) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.indicatorOf(w, r)
	if in == nil {
		return
	}
	errs := fieldErrs{}
	s.checkAttrs(errs, "", []attrIn{a})
	if len(errs) > 0 {
		// Single-attribute routes name the fields without the list prefix.
		flat := fieldErrs{}
		for k, v := range errs {
			flat[strings.TrimPrefix(k, "attributes.0.")] = v
		}
		validation(w, flat)
		return
	}
	now := s.now().Unix()
	row, added, sourced := s.addAttrLocked(&in.attrs, a.Name, string(a.Value), firstSource(a.Sources), now)
	status := http.StatusOK
	switch {
	case added:
		status = http.StatusCreated
		in.touched = now
		s.record("attribute.add", indObject(in.id), row.name, row.value)
	case sourced:
		in.touched = now
		s.recordRow("attribute.source.add", indObject(in.id), row)
	}
	b := append([]byte(nil), `{"total":1,"data":[`...)
	b = appendAttr(b, in.id, row, true)
	writeRaw(w, status, append(b, "]}"...))
}

// rowOf returns the index of the {row} path value in in's rows, or
// answers 404 and returns -1.
func rowOf(w http.ResponseWriter, r *http.Request, in *indicator) int {
	id, err := strconv.ParseInt(r.PathValue("row"), 10, 64)
	i := slices.IndexFunc(in.attrs, func(a attrRow) bool { return a.id == id })
	if err != nil || i < 0 {
		notFound(w)
		return -1
	}
	return i
}

// deleteAttribute implements DELETE /api/indicators/{id}/attributes/{row}:
// 204, or 404 when the row is gone.
func (s *Server) deleteAttribute(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.indicatorOf(w, r)
	if in == nil {
		return
	}
	i := rowOf(w, r, in)
	if i < 0 {
		return
	}
	row := in.attrs[i]
	in.attrs = slices.Delete(slices.Clip(in.attrs), i, i+1)
	in.touched = s.now().Unix()
	s.recordRow("attribute.delete", indObject(in.id), &row)
	w.WriteHeader(http.StatusNoContent)
}

// updateAttribute implements PUT /api/indicators/{id}/attributes/{row}
// with {"value": …}. In the ledger a changed value is the old row's
// delete and the new value's add.
func (s *Server) updateAttribute(w http.ResponseWriter, r *http.Request) {
	var a attrIn
	if !decodeObject(w, r, &a) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.indicatorOf(w, r)
	if in == nil {
		return
	}
	i := rowOf(w, r, in)
	if i < 0 {
		return
	}
	v := string(a.Value)
	errs := fieldErrs{}
	if s.checkValue(errs, "value", v); len(errs) > 0 {
		validation(w, errs)
		return
	}
	row := &in.attrs[i]
	if row.value != v {
		now := s.now().Unix()
		s.recordRow("attribute.delete", indObject(in.id), row)
		row.value, row.updated, in.touched = v, now, now
		s.record("attribute.add", indObject(in.id), row.name, row.value)
	}
	b := append([]byte(nil), `{"data":`...)
	b = appendAttr(b, in.id, row, true)
	writeRaw(w, http.StatusOK, append(b, '}'))
}

// signature is a stored signature.
type signature struct {
	id               int64
	name, value      string
	typ, status      int
	desc             string
	sources          []string
	attrs            []attrRow
	created, updated int64
}

// Signature is a signature as [Server.Signatures] returns it.
type Signature struct {
	ID          int64
	Name        string
	Value       string
	Type        string
	Status      string
	Description string
	Sources     []string
	Attributes  []Attribute
}

// Signatures returns every signature, in creation order.
func (s *Server) Signatures() []Signature {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Signature, len(s.sigOrder))
	for i, sg := range s.sigOrder {
		out[i] = Signature{
			ID: sg.id, Name: sg.name, Value: sg.value, Description: sg.desc,
			Type: s.ref.sigTypes.items[sg.typ].name, Status: s.ref.sigStatuses.items[sg.status].name,
			Sources: slices.Clone(sg.sources), Attributes: exportAttrs(sg.attrs),
		}
	}
	return out
}

// consumeSignatures implements POST /api/signatures/consume: an upsert by
// (type, value) that updates name, description and attributes of an
// existing signature but not its status. More than MaxConsumeItems is
// refused.
func (s *Server) consumeSignatures(w http.ResponseWriter, r *http.Request) {
	items, ok := decodeConsume(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := fieldErrs{}
	types := make([]int, len(items))
	statuses := make([]int, len(items))
	refs := itemRefs{&s.ref.sigTypes, &s.ref.sigStatuses, "type_id", "The selected type id is invalid."}
	for i, it := range items {
		p := strconv.Itoa(i) + "."
		s.checkValue(errs, p+"value", string(it.Value), it.Name)
		if strings.TrimSpace(it.Name) == "" {
			errs.add(p+"name", "The name field is required.")
		}
		types[i], statuses[i] = s.resolveItemLocked(errs, p, it, refs)
	}
	if len(errs) > 0 {
		validation(w, errs)
		return
	}
	now := s.now().Unix()
	out := make([]map[string]any, len(items))
	for i, it := range items {
		k := ikey{types[i], string(it.Value)}
		sg := s.sigs[k]
		existing := sg != nil
		object := ""
		if sg == nil {
			st := statuses[i]
			if st < 0 {
				st, _ = s.ref.sigStatuses.index(defaultNewStatus)
			}
			sg = &signature{id: s.nextSig, name: it.Name, value: string(it.Value), typ: types[i], status: st, created: now, updated: now}
			if it.Description != nil {
				sg.desc = *it.Description
			}
			s.nextSig++
			s.sigs[k] = sg
			s.sigByID[sg.id] = sg
			s.sigOrder = append(s.sigOrder, sg)
			object = "signature/" + strconv.FormatInt(sg.id, 10)
			s.record("signature.create", object, sg.name, s.ref.sigTypes.items[sg.typ].name)
		} else {
			object = "signature/" + strconv.FormatInt(sg.id, 10)
			// As for indicators, the status of an item applies to a new
			// signature only (corrections 1): an existing one's is set
			// with PUT /api/signatures/{id}.
			if it.Name != sg.name {
				sg.name, sg.updated = it.Name, now
				s.record("signature.update", object, "name", sg.name)
			}
			if it.Description != nil && *it.Description != sg.desc {
				sg.desc, sg.updated = *it.Description, now
				s.record("signature.update", object, "description", "")
			}
		}
		for _, src := range it.Sources {
			sg.sources, _ = addSource(sg.sources, src.Name)
		}
		s.addAttrsLocked(&sg.attrs, it.Attributes, it.Sources, now, func(row *attrRow) {
			if existing {
				sg.updated = now
				s.record("signature.update", object, row.name, row.value)
			}
		}, func(*attrRow) {})
		out[i] = map[string]any{
			"id": sg.id, "name": sg.name, "value": sg.value, "type_id": s.ref.sigTypes.items[sg.typ].id,
			"status_id": s.ref.sigStatuses.items[sg.status].id, "existing": existing,
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": len(out), "data": out})
}

// updateSignature implements PUT /api/signatures/{id} with a status as
// status_id, {"status": {"name"}} or {"status": "Name"} (by analogy with
// indicators, corrections 1).
func (s *Server) updateSignature(w http.ResponseWriter, r *http.Request) {
	var it objectIn
	if !decodeObject(w, r, &it) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	sg := s.sigByID[id]
	if err != nil || sg == nil {
		notFound(w)
		return
	}
	if it.Status.given || it.StatusID != 0 {
		st, ok := it.Status.resolve(&s.ref.sigStatuses, it.StatusID)
		if !ok {
			validation(w, map[string][]string{"status_id": {"The selected status id is invalid."}})
			return
		}
		if st != sg.status {
			sg.status, sg.updated = st, s.now().Unix()
			s.record("signature.status.set", "signature/"+strconv.FormatInt(sg.id, 10), "status", s.ref.sigStatuses.items[st].name)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
		"id": sg.id, "name": sg.name, "value": sg.value, "type_id": s.ref.sigTypes.items[sg.typ].id,
		"status_id": s.ref.sigStatuses.items[sg.status].id,
	}})
}

// decodeObject reads r's body as the JSON object v, and answers the
// validation error itself when it cannot, reporting whether it could.
func decodeObject(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := readBody(r)
	if err != nil {
		validation(w, map[string][]string{"body": {"The request body could not be read."}})
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		validation(w, map[string][]string{"body": {"The request body must be a JSON object."}})
		return false
	}
	return true
}

// decodeConsume reads a consume route's body (an array of objects, at most
// MaxConsumeItems), and answers the validation error itself when it
// cannot, reporting whether it could.
func decodeConsume(w http.ResponseWriter, r *http.Request) ([]objectIn, bool) {
	body, err := readBody(r)
	if err != nil {
		validation(w, map[string][]string{"body": {"The request body could not be read."}})
		return nil, false
	}
	items, err := decodeItems(body)
	if err != nil {
		validation(w, map[string][]string{"body": {"The request body must be an array of objects."}})
		return nil, false
	}
	if len(items) > MaxConsumeItems {
		validation(w, map[string][]string{"payload": {fmt.Sprintf("The payload may not have more than %d items.", MaxConsumeItems)}})
		return nil, false
	}
	return items, true
}
