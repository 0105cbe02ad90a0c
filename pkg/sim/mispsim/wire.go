package mispsim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Wire shapes: what MISP's JSONConverterTool sends, ids and counters as
// strings.

type wireOrg struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

type wireTag struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Colour     string `json:"colour"`
	Exportable bool   `json:"exportable"`
	HideTag    bool   `json:"hide_tag"`
}

type wireAttr struct {
	ID                 string    `json:"id"`
	EventID            string    `json:"event_id"`
	ObjectID           string    `json:"object_id"`
	ObjectRelation     *string   `json:"object_relation"`
	Category           string    `json:"category"`
	Type               string    `json:"type"`
	Value1             string    `json:"value1"`
	Value2             string    `json:"value2"`
	ToIDs              bool      `json:"to_ids"`
	UUID               string    `json:"uuid"`
	Timestamp          string    `json:"timestamp"`
	Distribution       string    `json:"distribution"`
	SharingGroupID     string    `json:"sharing_group_id"`
	Comment            string    `json:"comment"`
	Deleted            bool      `json:"deleted"`
	DisableCorrelation bool      `json:"disable_correlation"`
	FirstSeen          *string   `json:"first_seen"`
	LastSeen           *string   `json:"last_seen"`
	Value              string    `json:"value"`
	Tag                []wireTag `json:"Tag,omitempty"`
}

type wireEvent struct {
	ID                 string     `json:"id"`
	OrgcID             string     `json:"orgc_id"`
	OrgID              string     `json:"org_id"`
	Date               string     `json:"date"`
	ThreatLevelID      string     `json:"threat_level_id"`
	Info               string     `json:"info"`
	Published          bool       `json:"published"`
	UUID               string     `json:"uuid"`
	AttributeCount     string     `json:"attribute_count"`
	Analysis           string     `json:"analysis"`
	Timestamp          string     `json:"timestamp"`
	Distribution       string     `json:"distribution"`
	ProposalEmailLock  bool       `json:"proposal_email_lock"`
	Locked             bool       `json:"locked"`
	PublishTimestamp   string     `json:"publish_timestamp"`
	SharingGroupID     string     `json:"sharing_group_id"`
	DisableCorrelation bool       `json:"disable_correlation"`
	ExtendsUUID        string     `json:"extends_uuid"`
	EventCreatorEmail  string     `json:"event_creator_email"`
	Org                wireOrg    `json:"Org"`
	Orgc               wireOrg    `json:"Orgc"`
	Tag                []wireTag  `json:"Tag,omitempty"`
	Attribute          []wireAttr `json:"Attribute,omitempty"`
	ShadowAttribute    []wireAttr `json:"ShadowAttribute,omitempty"`
	RelatedEvent       []any      `json:"RelatedEvent,omitempty"`
	Galaxy             []any      `json:"Galaxy,omitempty"`
	Object             []any      `json:"Object,omitempty"`
}

const orgUUID = "55f6ea5e-2c60-40e5-964f-47a8950d210f"

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func wireTags(ts []*tag) []wireTag {
	if len(ts) == 0 {
		return nil
	}
	out := make([]wireTag, len(ts))
	for i, t := range ts {
		out[i] = wireTag{ID: itoa(t.id), Name: t.name, Colour: "#ffffff", Exportable: true}
	}
	return out
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (a *attribute) wire(withTags bool) wireAttr {
	w := wireAttr{
		ID: itoa(a.id), EventID: itoa(a.eventID), ObjectID: "0", Category: a.category, Type: a.typ,
		Value1: a.value, ToIDs: a.toIDs, UUID: a.uuid, Timestamp: itoa(a.timestamp),
		Distribution: a.distribution, SharingGroupID: "0", Comment: a.comment,
		DisableCorrelation: a.noCorrelate, FirstSeen: optString(a.firstSeen), LastSeen: optString(a.lastSeen),
		Value: a.value,
	}
	if withTags {
		w.Tag = wireTags(a.tags)
	}
	return w
}

// wire renders an event. Callers hold mu.
func (s *Server) wire(e *event, withAttrs bool) wireEvent {
	org := wireOrg{ID: itoa(e.org.id), Name: e.org.name, UUID: e.org.uuid}
	sg := e.sgID
	if sg == "" {
		sg = "0"
	}
	w := wireEvent{
		ID: itoa(e.id), OrgcID: org.ID, OrgID: org.ID, Date: e.date, ThreatLevelID: e.threatLevel, Info: e.info,
		Published: e.published, UUID: e.uuid, AttributeCount: strconv.Itoa(len(e.attrs)), Analysis: e.analysis,
		Timestamp: itoa(e.timestamp), Distribution: e.distribution, PublishTimestamp: itoa(e.published0),
		SharingGroupID: sg, EventCreatorEmail: "admin@admin.test", Org: org, Orgc: org, Tag: wireTags(e.tags),
	}
	if withAttrs {
		w.Attribute = make([]wireAttr, 0, len(e.attrs))
		for _, a := range e.attrs {
			w.Attribute = append(w.Attribute, a.wire(true))
		}
	}
	return w
}

// Writers.

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeException is MISP's rendering of an exception for a REST call.
func writeException(w http.ResponseWriter, status int, msg, url string) {
	writeJSON(w, status, map[string]string{"name": msg, "message": msg, "url": url})
}

// writeValidation is RestResponseComponent::saveFailResponse: HTTP 403.
func writeValidation(w http.ResponseWriter, model, url string, errs any) {
	writeJSON(w, http.StatusForbidden, map[string]any{
		"saved": false, "name": "Could not add " + model, "message": "Could not add " + model,
		"url": url, "errors": errs,
	})
}

func writeHTML(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte("<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" +
		title + "</h1></center>\r\n<p>" + text + "</p>\r\n</body>\r\n</html>\r\n"))
}

// htmlErrors gives bodiless 5xx answers an HTML body.
type htmlErrors struct {
	http.ResponseWriter
	pending int
	wrote   bool
}

// WriteHeader holds back a 5xx status until a body is written.
func (h *htmlErrors) WriteHeader(code int) {
	if code >= 500 && !h.wrote && h.pending == 0 {
		h.pending = code
		return
	}
	h.wrote = true
	h.ResponseWriter.WriteHeader(code)
}

// Write sends a held-back status, then b.
func (h *htmlErrors) Write(b []byte) (int, error) {
	if h.pending != 0 {
		h.ResponseWriter.WriteHeader(h.pending)
		h.pending = 0
	}
	h.wrote = true
	return h.ResponseWriter.Write(b)
}

// Hijack lets the fault injector drop the connection.
func (h *htmlErrors) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if hj, ok := h.ResponseWriter.(http.Hijacker); ok {
		return hj.Hijack()
	}
	return nil, nil, http.ErrNotSupported
}

func (h *htmlErrors) finish() {
	if h.pending == 0 {
		return
	}
	code := h.pending
	h.pending = 0
	h.wrote = true
	writeHTML(h.ResponseWriter, code, strconv.Itoa(code)+" "+http.StatusText(code), "The server encountered an error.")
}

// Lenient request shapes.

type inTag struct {
	Name string `json:"name"`
}

// numStr is what PHP's json_decode and CakePHP's casts make of a scalar:
// a string as it is, a number in its JSON text, true "1", false and null
// "".
type numStr string

// UnmarshalJSON implements json.Unmarshaler.
func (n *numStr) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case len(data) == 0:
		return errors.New("empty JSON value")
	case data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*n = numStr(s)
	case string(data) == "null" || string(data) == "false":
		*n = ""
	case string(data) == "true":
		*n = "1"
	case data[0] == '-' || (data[0] >= '0' && data[0] <= '9'):
		var num json.Number
		if err := json.Unmarshal(data, &num); err != nil {
			return err
		}
		*n = numStr(num.String())
	default:
		return errors.New("not a scalar")
	}
	return nil
}

// lenientBool accepts true/false, 1/0 and "1"/"0"/"true"/"false".
type lenientBool bool

// UnmarshalJSON implements json.Unmarshaler.
func (b *lenientBool) UnmarshalJSON(data []byte) error {
	var n numStr
	if err := n.UnmarshalJSON(data); err != nil {
		return err
	}
	switch strings.ToLower(string(n)) {
	case "", "0", "false":
		*b = false
	default:
		*b = true
	}
	return nil
}

// lenientString accepts a string or a number.
type lenientString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *lenientString) UnmarshalJSON(data []byte) error {
	var n numStr
	if err := n.UnmarshalJSON(data); err != nil {
		return err
	}
	*s = lenientString(n)
	return nil
}

type inEvent struct {
	UUID           string            `json:"uuid"`
	Info           string            `json:"info"`
	Date           string            `json:"date"`
	ThreatLevelID  numStr            `json:"threat_level_id"`
	Analysis       numStr            `json:"analysis"`
	Distribution   numStr            `json:"distribution"`
	SharingGroupID numStr            `json:"sharing_group_id"`
	Published      lenientBool       `json:"published"`
	Tag            []inTag           `json:"Tag"`
	Attribute      []json.RawMessage `json:"Attribute"`
}

type inAttr struct {
	Type               string          `json:"type"`
	Category           string          `json:"category"`
	Value              json.RawMessage `json:"value"`
	ToIDs              *lenientBool    `json:"to_ids"`
	UUID               string          `json:"uuid"`
	Distribution       numStr          `json:"distribution"`
	SharingGroupID     numStr          `json:"sharing_group_id"`
	Comment            string          `json:"comment"`
	FirstSeen          string          `json:"first_seen"`
	LastSeen           string          `json:"last_seen"`
	DisableCorrelation lenientBool     `json:"disable_correlation"`
	BatchImport        lenientBool     `json:"batch_import"`
	Tag                []inTag         `json:"Tag"`
}

// unwrap returns the value under key when obj is {"key": …}, else obj.
func unwrap(obj json.RawMessage, key string) json.RawMessage {
	obj = bytes.TrimSpace(obj)
	if len(obj) == 0 || obj[0] != '{' {
		return obj
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return obj
	}
	if v, ok := m[key]; ok {
		return v
	}
	return obj
}

func (s *Server) nowUnix() int64 { return s.now().Unix() }

func (s *Server) today() string { return s.now().UTC().Format(time.DateOnly) }
