package mispsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/sim"
)

const (
	msgAuth        = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header."
	msgInvalidJSON = "Invalid JSON input. Make sure that the JSON input is a correctly formatted JSON string and that the correct content-type is set."
	msgEventExists = "Event already exists, if you would like to edit it, use the url in the location header."
)

type restHandler func(w http.ResponseWriter, r *http.Request, body []byte)

// Handler returns the simulated API with the admin routes of [sim.Base].
// A request without Accept: application/json (or a .json path) is not
// REST for MISP: an unauthenticated one is redirected to /users/login, an
// authenticated one gets an HTML error page.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events/add", s.rest(s.addEvent))
	mux.HandleFunc("POST /events/add/{opts...}", s.rest(s.addEvent))
	mux.HandleFunc("GET /events/view/{id}", s.rest(s.viewEvent)) // HEAD too.
	mux.HandleFunc("POST /events/restSearch", s.rest(s.restSearch))
	mux.HandleFunc("GET /events/restSearch", s.rest(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeException(w, http.StatusBadRequest,
			"Restsearch queries using GET and no parameters are not allowed. If you have passed parameters via a JSON body, make sure you use POST requests.",
			r.URL.Path)
	}))
	mux.HandleFunc("POST /events/publish/{id}", s.rest(s.publish))
	mux.HandleFunc("POST /attributes/restSearch", s.rest(s.attributeSearch))
	mux.HandleFunc("POST /attributes/add/{event}", s.rest(s.addAttributes))
	mux.HandleFunc("POST /attributes/add/{event}/{opts...}", s.rest(s.addAttributes))
	mux.HandleFunc("GET /attributes/describeTypes.json", s.rest(s.describeTypes))
	mux.HandleFunc("GET /servers/getVersion", s.rest(s.version))
	mux.HandleFunc("GET /servers/getVersion.json", s.rest(s.version))
	mux.HandleFunc("GET /users/view/me", s.rest(s.me))
	mux.HandleFunc("GET /users/view/me.json", s.rest(s.me))
	// Any other route: CakePHP's MissingController/MissingAction
	// exception, rendered as MISP's JSON 404 for a REST call.
	mux.HandleFunc("/", s.rest(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		writeException(w, http.StatusNotFound, "Not Found", r.URL.Path)
	}))
	h := s.Base.Handler(s.countStatuses(mux), nil)
	if !s.opts.HTMLErrors {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := &htmlErrors{ResponseWriter: w}
		h.ServeHTTP(hw, r)
		hw.finish()
	})
}

// rest applies what every API call goes through: the body size limit (a
// proxy's, so first), authentication, the REST check, and reading the body.
func (s *Server) rest(h restHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit := s.opts.MaxPayloadBytes
		if limit > 0 && r.ContentLength > limit {
			writeHTML(w, http.StatusRequestEntityTooLarge, "413 Request Entity Too Large", "nginx")
			return
		}
		var body []byte
		if r.Body != nil {
			rd := io.Reader(r.Body)
			if limit > 0 {
				rd = io.LimitReader(r.Body, limit+1)
			}
			b, err := io.ReadAll(rd)
			if err != nil {
				return // The client went away.
			}
			if limit > 0 && int64(len(b)) > limit {
				writeHTML(w, http.StatusRequestEntityTooLarge, "413 Request Entity Too Large", "nginx")
				return
			}
			body = b
		}
		isREST := strings.Contains(r.Header.Get("Accept"), "application/json") || strings.HasSuffix(r.URL.Path, ".json")
		if !s.authenticated(r) {
			if !isREST {
				w.Header().Set("Location", "/users/login")
				w.WriteHeader(http.StatusFound)
				return
			}
			writeException(w, http.StatusForbidden, msgAuth, r.URL.Path)
			return
		}
		if !isREST {
			writeHTML(w, http.StatusInternalServerError, "Internal Error", "Invalid format, only JSON or XML is supported.")
			return
		}
		h(w, r, body)
	}
}

var keyRE = regexp.MustCompile(`^[a-zA-Z0-9]{40}$`)

// authenticated is AppController::__loginByAuthKey: the key comes from
// Authorization or X-MISP-AUTH, raw; a Basic value is ignored; the value is
// split on commas and a part must be a 40-character key we know.
func (s *Server) authenticated(r *http.Request) bool {
	v := r.Header.Get("Authorization")
	if v == "" || strings.HasPrefix(v, "Basic") {
		v = r.Header.Get("X-MISP-AUTH")
	}
	for _, k := range strings.Split(v, ",") {
		k = strings.TrimSpace(k)
		if keyRE.MatchString(k) && s.keys[k] {
			return true
		}
	}
	return false
}

func decodeBody(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// cakeUUID is CakePHP's Validation::uuid.
var cakeUUID = regexp.MustCompile(`^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[0-5][a-fA-F0-9]{3}-[089aAbB][a-fA-F0-9]{3}-[a-fA-F0-9]{12}$`)

func inList(v string, opts ...string) bool {
	for _, o := range opts {
		if v == o {
			return true
		}
	}
	return false
}

func (s *Server) addEvent(w http.ResponseWriter, r *http.Request, body []byte) {
	const url = "/events/add"
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || string(trimmed) == "{}" || string(trimmed) == "[]" {
		writeException(w, http.StatusMethodNotAllowed, "No valid event data received.", url)
		return
	}
	var in inEvent
	if err := decodeBody(unwrap(trimmed, "Event"), &in); err != nil {
		writeException(w, http.StatusMethodNotAllowed, msgInvalidJSON, url)
		return
	}
	metadata := strings.Contains(r.PathValue("opts"), "metadata:1")
	in.UUID = strings.ToLower(strings.TrimSpace(in.UUID))

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.OrgBlocklisted {
		writeException(w, http.StatusForbidden, "Event blocked by organisation blocklist.", url)
		return
	}
	if in.UUID != "" && s.blocklist[in.UUID] {
		if s.opts.OldBlocklist {
			writeValidation(w, "Event", url, []any{})
			return
		}
		writeException(w, http.StatusForbidden, "Event blocked by event blocklist.", url)
		return
	}
	if in.UUID != "" {
		if e := s.byUUID[in.UUID]; e != nil {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			w.Header().Set("Location", scheme+"://"+r.Host+"/events/"+itoa(e.id))
			writeException(w, s.opts.DuplicateEventStatus, msgEventExists, url)
			return
		}
	}
	if bool(in.Published) && len(in.Attribute) == 0 {
		writeException(w, http.StatusForbidden, "Received a published event that was empty. Event add process blocked.", url)
		return
	}
	errs := map[string][]string{}
	if strings.TrimSpace(in.Info) == "" {
		errs["info"] = []string{"Info cannot be empty."}
	}
	if in.Date != "" && !dateRE.MatchString(in.Date) {
		errs["date"] = []string{"Expected date format: YYYY-MM-DD"}
	}
	if in.ThreatLevelID != "" && !inList(string(in.ThreatLevelID), "1", "2", "3", "4") {
		errs["threat_level_id"] = []string{"Options : 1, 2, 3, 4 (for High, Medium, Low, Undefined)"}
	}
	if in.Analysis != "" && !inList(string(in.Analysis), "0", "1", "2") {
		errs["analysis"] = []string{"Options : 0, 1, 2 (for Initial, Ongoing, Completed)"}
	}
	if in.Distribution != "" && !inList(string(in.Distribution), "0", "1", "2", "3", "4") {
		errs["distribution"] = []string{"Options : Your organisation only, This community only, Connected communities, All communities, Sharing group"}
	}
	if in.UUID != "" && !cakeUUID.MatchString(in.UUID) {
		errs["uuid"] = []string{"Please provide a valid RFC 4122 UUID"}
	}
	if len(errs) > 0 {
		writeValidation(w, "Event", url, map[string]any{"Event": errs})
		return
	}
	now := s.nowUnix()
	e := &event{
		id: int64(len(s.events) + 1), uuid: in.UUID, info: in.Info, date: in.Date,
		threatLevel: string(in.ThreatLevelID), analysis: string(in.Analysis),
		distribution: string(in.Distribution), sgID: string(in.SharingGroupID),
		timestamp: now, tags: s.tagList(in.Tag), keys: map[string]bool{}, org: s.orgs[0],
	}
	if e.uuid == "" {
		e.uuid = s.uuid4()
	}
	if e.date == "" {
		e.date = s.today()
	}
	if e.threatLevel == "" {
		e.threatLevel = "4"
	}
	if e.analysis == "" {
		e.analysis = "0"
	}
	if e.distribution == "" {
		e.distribution = "0"
	}
	s.events = append(s.events, e)
	s.byUUID[e.uuid] = e
	s.Ledger.Record(sim.Entry{System: "misp", Op: "event.create", Object: "event/" + e.uuid, Value: e.info})
	// Inline attributes: captured one by one, failures silently dropped.
	for _, raw := range in.Attribute {
		var ia inAttr
		if decodeBody(raw, &ia) != nil {
			continue
		}
		for _, one := range expand(ia) {
			_, _ = s.capture(e, one)
		}
	}
	if in.Published && len(e.attrs) > 0 {
		e.published, e.published0 = true, now
	}
	writeJSON(w, http.StatusOK, map[string]any{"Event": s.wire(e, !metadata)})
}

func (s *Server) viewEvent(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.findEvent(r.PathValue("id"))
	if r.Method == http.MethodHead {
		if e == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	if e == nil {
		writeException(w, http.StatusNotFound, "Invalid event", r.URL.Path)
		return
	}
	if s.opts.AttributeLimit > 0 && len(e.attrs) > s.opts.AttributeLimit {
		writeHTML(w, http.StatusInternalServerError, "Fatal error",
			"Allowed memory size of 134217728 bytes exhausted (tried to allocate 20480 bytes)")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"Event": s.wire(e, true)})
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.findEvent(r.PathValue("id"))
	if e == nil {
		writeException(w, http.StatusNotFound, "Invalid event.", r.URL.Path)
		return
	}
	if !e.published {
		e.published, e.published0 = true, s.nowUnix()
		s.Ledger.Record(sim.Entry{System: "misp", Op: "event.publish", Object: "event/" + e.uuid})
	}
	const msg = "Event published without alerts"
	writeJSON(w, http.StatusOK, map[string]any{
		"saved": true, "success": true, "name": msg, "message": msg,
		"url": "/events/publish/" + itoa(e.id), "id": itoa(e.id),
	})
}

func (s *Server) describeTypes(w http.ResponseWriter, _ *http.Request, _ []byte) {
	if s.typesJSON != nil {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = w.Write(s.typesJSON)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": s.types})
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request, _ []byte) {
	writeJSON(w, http.StatusOK, map[string]any{
		"version": "2.5.1", "pymisp_recommended_version": "2.5.1", "perm_sync": false,
		"perm_sighting": true, "perm_galaxy_editor": false, "perm_analyst_data": false, "uuid": "-",
		"request_encoding": []string{"gzip"}, "filter_sightings": true,
	})
}

// me is GET /users/view/me: the API user with its role and organisation.
func (s *Server) me(w http.ResponseWriter, _ *http.Request, _ []byte) {
	o := s.orgs[0]
	writeJSON(w, http.StatusOK, map[string]any{
		"User": map[string]any{"id": "1", "org_id": itoa(o.id), "email": "admin@admin.test", "role_id": "1",
			"disabled": false},
		"Role": map[string]any{"id": "1", "name": "admin", "perm_add": true, "perm_modify": true,
			"perm_publish": true, "perm_tag_editor": true, "perm_auth": true, "perm_sync": false},
		"Organisation": map[string]any{"id": itoa(o.id), "name": o.name, "uuid": o.uuid, "local": true},
	})
}

// searchFilters are the restSearch parameters the simulator implements.
// Any other is refused (501), so that a test never reads an unfiltered
// answer as a filtered one.
var searchFilters = map[string]bool{
	"returnFormat": true, "uuid": true, "eventid": true, "eventinfo": true, "event_tags": true,
	"tags": true, "from": true, "to": true, "published": true, "metadata": true, "limit": true,
	"page": true, "org": true,
}

// restSearch is POST /events/restSearch with the filters tqflow uses.
func (s *Server) restSearch(w http.ResponseWriter, r *http.Request, body []byte) {
	q := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeBody(unwrap(body, "request"), &q); err != nil {
			writeException(w, http.StatusMethodNotAllowed, msgInvalidJSON, r.URL.Path)
			return
		}
	}
	for k := range q {
		if !searchFilters[k] {
			writeException(w, http.StatusNotImplemented, "mispsim: restSearch filter "+strconv.Quote(k)+" is not simulated", r.URL.Path)
			return
		}
	}
	if f := strList(q["returnFormat"]); len(f) > 0 && f[0] != "json" {
		writeException(w, http.StatusNotImplemented, "mispsim: restSearch returnFormat "+strconv.Quote(f[0])+" is not simulated", r.URL.Path)
		return
	}
	f := parseFilters(q)
	s.mu.Lock()
	defer s.mu.Unlock()
	var hits []*event
	for _, e := range s.events {
		if !e.deleted && f.match(e) {
			hits = append(hits, e)
		}
	}
	if f.limit > 0 {
		page := max(f.page, 1)
		from := min((page-1)*f.limit, len(hits))
		hits = hits[from:min(from+f.limit, len(hits))]
	}
	out := make([]map[string]any, 0, len(hits))
	for _, e := range hits {
		out = append(out, map[string]any{"Event": s.wire(e, !f.metadata)})
	}
	w.Header().Set("X-Result-Count", strconv.Itoa(len(out)))
	w.Header().Set("X-Response-Format", "json")
	writeJSON(w, http.StatusOK, map[string]any{"response": out})
}

type filters struct {
	uuids, eventIDs, infos, tags, orgs []string
	from, to                           string
	published                          *bool
	metadata                           bool
	limit, page                        int
}

// strList reads a filter that may be a string, a number or a list of them.
func strList(raw json.RawMessage) []string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] == '[' {
		var items []lenientString
		if json.Unmarshal(raw, &items) != nil {
			return nil
		}
		out := make([]string, 0, len(items))
		for _, it := range items {
			out = append(out, string(it))
		}
		return out
	}
	var one lenientString
	if json.Unmarshal(raw, &one) != nil || one == "" {
		return nil
	}
	return []string{string(one)}
}

func dateFilter(raw json.RawMessage) string {
	l := strList(raw)
	if len(l) == 0 {
		return ""
	}
	if n, err := strconv.ParseInt(l[0], 10, 64); err == nil {
		return time.Unix(n, 0).UTC().Format(time.DateOnly)
	}
	return l[0]
}

func parseFilters(q map[string]json.RawMessage) filters {
	f := filters{
		uuids: strList(q["uuid"]), eventIDs: strList(q["eventid"]), infos: strList(q["eventinfo"]),
		tags: append(strList(q["event_tags"]), strList(q["tags"])...), orgs: strList(q["org"]),
		from: dateFilter(q["from"]), to: dateFilter(q["to"]),
	}
	var b lenientBool
	if raw, ok := q["published"]; ok && json.Unmarshal(raw, &b) == nil {
		v := bool(b)
		f.published = &v
	}
	if raw, ok := q["metadata"]; ok && json.Unmarshal(raw, &b) == nil {
		f.metadata = bool(b)
	}
	if l := strList(q["limit"]); len(l) > 0 {
		f.limit, _ = strconv.Atoi(l[0])
	}
	if l := strList(q["page"]); len(l) > 0 {
		f.page, _ = strconv.Atoi(l[0])
	}
	return f
}

func (f filters) match(e *event) bool {
	if len(f.uuids) > 0 && !anyOf(f.uuids, func(u string) bool {
		u = strings.ToLower(u)
		if e.uuid == u {
			return true
		}
		for _, a := range e.attrs {
			if a.uuid == u {
				return true
			}
		}
		return false
	}) {
		return false
	}
	if len(f.eventIDs) > 0 && !anyOf(f.eventIDs, func(id string) bool {
		return id == itoa(e.id) || strings.EqualFold(id, e.uuid)
	}) {
		return false
	}
	if len(f.infos) > 0 && !anyOf(f.infos, func(p string) bool { return like(e.info, p) }) {
		return false
	}
	if len(f.tags) > 0 && !anyOf(f.tags, func(t string) bool {
		for _, et := range e.tags {
			if strings.EqualFold(et.name, t) {
				return true
			}
		}
		return false
	}) {
		return false
	}
	if len(f.orgs) > 0 && !anyOf(f.orgs, func(o string) bool {
		return o == itoa(e.org.id) || strings.EqualFold(o, e.org.name) || strings.EqualFold(o, e.org.uuid)
	}) {
		return false
	}
	if f.from != "" && e.date < f.from || f.to != "" && e.date > f.to {
		return false
	}
	if f.published != nil && e.published != *f.published {
		return false
	}
	return true
}

func anyOf(xs []string, pred func(string) bool) bool {
	for _, x := range xs {
		if pred(x) {
			return true
		}
	}
	return false
}

// like is MISP's eventinfo filter: an exact (case-insensitive, as MySQL's
// default collation) match unless the pattern starts or ends with %, which
// makes it a LIKE with % and _ wildcards.
func like(s, pattern string) bool {
	if !strings.HasPrefix(pattern, "%") && !strings.HasSuffix(pattern, "%") {
		return strings.EqualFold(s, pattern)
	}
	var b strings.Builder
	b.WriteString("(?is)^")
	for _, r := range pattern {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	return err == nil && re.MatchString(s)
}

// attributeFilters are the /attributes/restSearch parameters simulated.
var attributeFilters = map[string]bool{
	"returnFormat": true, "eventid": true, "type": true, "value": true, "limit": true, "page": true,
}

// attributeSearch is POST /attributes/restSearch: value matches value1 as
// MySQL's utf8mb3_unicode_ci compares (case and accents ignored).
func (s *Server) attributeSearch(w http.ResponseWriter, r *http.Request, body []byte) {
	q := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(body)) == 0 {
		writeException(w, http.StatusBadRequest, "Restsearch queries using GET and no parameters are not allowed. If you have passed parameters via a JSON body, make sure you use POST requests.", r.URL.Path)
		return
	}
	if err := decodeBody(unwrap(body, "request"), &q); err != nil {
		writeException(w, http.StatusMethodNotAllowed, msgInvalidJSON, r.URL.Path)
		return
	}
	for k := range q {
		if !attributeFilters[k] {
			writeException(w, http.StatusNotImplemented, "mispsim: attributes restSearch filter "+strconv.Quote(k)+" is not simulated", r.URL.Path)
			return
		}
	}
	if f := strList(q["returnFormat"]); len(f) > 0 && f[0] != "json" {
		writeException(w, http.StatusNotImplemented, "mispsim: restSearch returnFormat "+strconv.Quote(f[0])+" is not simulated", r.URL.Path)
		return
	}
	eventIDs, types := strList(q["eventid"]), strList(q["type"])
	values := map[string]bool{}
	for _, v := range strList(q["value"]) {
		values[foldKey(v)] = true
	}
	limit, page := 0, 1
	if l := strList(q["limit"]); len(l) > 0 {
		limit, _ = strconv.Atoi(l[0])
	}
	if p := strList(q["page"]); len(p) > 0 {
		page, _ = strconv.Atoi(p[0])
		page = max(page, 1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var hits []wireAttr
	for _, e := range s.events {
		if e.deleted || (len(eventIDs) > 0 && !anyOf(eventIDs, func(id string) bool {
			return id == itoa(e.id) || strings.EqualFold(id, e.uuid)
		})) {
			continue
		}
		for _, a := range e.attrs {
			if len(types) > 0 && !anyOf(types, func(t string) bool { return t == a.typ }) {
				continue
			}
			if len(values) > 0 && !values[foldKey(a.value)] {
				continue
			}
			hits = append(hits, a.wire(false))
		}
	}
	if limit > 0 {
		from := min((page-1)*limit, len(hits))
		hits = hits[from:min(from+limit, len(hits))]
	}
	if hits == nil {
		hits = []wireAttr{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"response": map[string]any{"Attribute": hits}})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// countStatuses counts the statuses the API answers (faults injected by
// [sim.Injector] excepted).
func (s *Server) countStatuses(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		s.statusMu.Lock()
		s.statuses[sw.status]++
		s.statusMu.Unlock()
	})
}

// Answered returns how many API answers had the given status.
func (s *Server) Answered(status int) int64 {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	return s.statuses[status]
}
