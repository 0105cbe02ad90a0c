package misp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/httpx"
)

// maxBody bounds how much of an answer is read: a full 25,000-attribute
// event is about 15 MB.
const maxBody = 64 << 20

// maxErrorBody bounds how much of a non-2xx answer is read. MISP's 403
// for a refused /attributes/add chunk lists every attribute's errors and
// must be read whole to be classified, so it is the same as for a
// success.
const maxErrorBody = maxBody

// Client talks to one MISP instance. It is safe for concurrent use.
type Client struct {
	base string
	key  string
	hc   *http.Client
	now  func() time.Time
	// scrub replaces the key (and the process's other secrets,
	// Config.Scrub) in every answer.
	scrub *httpx.Scrubber
}

// New returns a client for cfg, after validating it. It sends the raw key in
// Authorization (no "Bearer"), Accept: application/json (without which MISP
// does not treat a call as REST) and Content-Type: application/json. It
// follows no redirect. The key never appears in its errors.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configure misp client: %w", err)
	}
	cfg.setDefaults()
	hc, err := httpx.NewClient(httpx.TLSConfig{Insecure: cfg.DisableSSL, CAFile: cfg.CAFile}, cfg.Timeout, cfg.WrapTransport)
	if err != nil {
		return nil, fmt.Errorf("configure misp client: %w", err)
	}
	scrub := cfg.Scrub.Join(httpx.NewScrubber(cfg.Key.Reveal()))
	return &Client{base: cfg.URL, key: cfg.Key.Reveal(), hc: hc, now: time.Now, scrub: scrub}, nil
}

// answer is an HTTP answer read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) ok() bool { return a.status >= 200 && a.status < 300 }

// call sends one request; in, when not nil, is sent as JSON. It returns an
// error only when no complete answer came back.
func (c *Client) call(ctx context.Context, op, method, path string, in any) (answer, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return answer{}, fmt.Errorf("%s: encode request: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return answer{}, fmt.Errorf("%s: build request: %w", op, err)
	}
	req.Header.Set("Authorization", c.key)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, &httpx.TransportError{Op: op, Err: c.scrub.Error(err)}
	}
	defer func() { _ = resp.Body.Close() }()
	limit := int64(maxBody)
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if !ok {
		limit = maxErrorBody
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return answer{}, &httpx.TransportError{Op: op, Err: c.scrub.Error(fmt.Errorf("read response: %w", err))}
	}
	switch {
	case int64(len(b)) <= limit:
	case ok:
		return answer{}, &httpx.DecodeError{Op: op, Err: fmt.Errorf("answer larger than %d bytes", limit)}
	default:
		b = b[:limit]
	}
	// MISP echoes what it was sent; a proxy may echo the headers.
	return answer{status: resp.StatusCode, header: resp.Header, body: c.scrub.Bytes(b)}, nil
}

// decode unmarshals a successful answer into v.
func decode(op string, a answer, v any) error {
	if !isJSON(a) {
		return &httpx.DecodeError{Op: op, Err: fmt.Errorf("answer is not JSON (%s)", contentType(a))}
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		return &httpx.DecodeError{Op: op, Err: err}
	}
	return nil
}

func contentType(a answer) string {
	ct := a.header.Get("Content-Type")
	if ct == "" {
		return "no content type"
	}
	return ct
}

// isJSON reports whether the answer looks like JSON: by its content type
// or, when that says nothing useful, by its first byte.
func isJSON(a answer) bool {
	b := bytes.TrimSpace(a.body)
	if len(b) == 0 {
		return false
	}
	mt, _, _ := mime.ParseMediaType(a.header.Get("Content-Type"))
	if mt == "text/html" {
		return false
	}
	return b[0] == '{' || b[0] == '['
}

// errorBody is MISP's error shape: exceptions carry name, message and url;
// validation failures add saved:false and errors.
type errorBody struct {
	Saved   *bool           `json:"saved"`
	Name    string          `json:"name"`
	Message string          `json:"message"`
	Errors  json.RawMessage `json:"errors"`
}

func (e errorBody) validation() bool {
	return e.Saved != nil && !*e.Saved && len(e.Errors) > 0 && string(e.Errors) != "null" && !e.emptyErrors()
}

// emptyErrors reports a saveFailResponse whose errors are [] or {}: what
// MISP before 2.4.150 sent for a blocklisted event UUID (PyMISP #1308).
func (e errorBody) emptyErrors() bool {
	if e.Saved == nil || *e.Saved {
		return false
	}
	b := bytes.TrimSpace(e.Errors)
	return string(b) == "[]" || string(b) == "{}"
}

func (e errorBody) text() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Name
}

func parseErrorBody(a answer) (errorBody, bool) {
	var eb errorBody
	if !isJSON(a) || json.Unmarshal(a.body, &eb) != nil {
		return errorBody{}, false
	}
	return eb, true
}

var titleRE = regexp.MustCompile(`(?is)<title>(.*?)</title>`)

// apiError turns a failed answer into an error. forbiddenEmpty is the kind
// given to a 403 without a body (HEAD answers have none).
func (c *Client) apiError(op string, a answer, forbiddenEmpty error) error {
	se := &httpx.StatusError{Op: op, StatusCode: a.status, Retry: c.retryAfter(a.header)}
	eb, isJSONBody := parseErrorBody(a)
	var fields map[string][]string
	switch {
	case isJSONBody && eb.validation():
		fields = flattenErrors(eb.Errors)
		se.Detail = clip(eb.text() + ": " + summary(fields))
	case isJSONBody:
		se.Detail = clip(eb.text())
	case len(bytes.TrimSpace(a.body)) == 0:
		se.Detail = "empty body"
	default:
		se.Detail = "non-JSON body (" + contentType(a) + ")"
		if m := titleRE.FindSubmatch(a.body); m != nil {
			se.Detail += ": " + clip(strings.TrimSpace(string(m[1])))
		}
	}
	if a.status >= 300 && a.status < 400 {
		se.Detail = "unexpected redirect"
		if loc, err := url.Parse(a.header.Get("Location")); err == nil && loc.Path != "" {
			se.Detail += " to " + clip(loc.Path)
		}
	}
	var kind error
	msg := eb.text()
	switch {
	case a.status == http.StatusUnauthorized:
		kind = ErrAuth
	case a.status == http.StatusForbidden && eb.validation():
		kind = ErrValidation
	case a.status == http.StatusForbidden && !isJSONBody && len(bytes.TrimSpace(a.body)) == 0:
		kind = forbiddenEmpty
	case a.status == http.StatusForbidden && isAuthMessage(msg):
		kind = ErrAuth
	case a.status == http.StatusForbidden && strings.Contains(strings.ToLower(msg), "organisation blocklist"):
		kind = ErrForbidden
	case a.status == http.StatusForbidden && strings.Contains(strings.ToLower(msg), "blocklist"),
		a.status == http.StatusForbidden && isJSONBody && eb.emptyErrors() && strings.HasPrefix(op, "misp: add event"):
		kind = ErrEventBlocked
	case a.status == http.StatusForbidden,
		a.status == http.StatusMethodNotAllowed && strings.Contains(strings.ToLower(msg), "permission"):
		kind = ErrForbidden
	case a.status == http.StatusNotFound:
		kind = ErrNotFound
	case a.status == http.StatusRequestEntityTooLarge:
		kind = ErrTooLarge
	}
	se.Detail = c.scrub.String(se.Detail) // decoded escapes may spell a secret
	for k, msgs := range fields {
		for i, m := range msgs {
			msgs[i] = c.scrub.String(m)
		}
		fields[k] = msgs
	}
	if kind == nil {
		return se
	}
	return &Error{Kind: kind, Status: se, Fields: fields}
}

// isAuthMessage reports whether a 403 message is one of MISP's
// authentication failures (AppController::__loginByAuthKey and friends),
// as opposed to a permission or blocklist refusal.
func isAuthMessage(m string) bool {
	m = strings.ToLower(m)
	return strings.Contains(m, "authentication failed") ||
		strings.Contains(m, "auth key") ||
		strings.Contains(m, "authkey") ||
		strings.Contains(m, "api key")
}

func clip(s string) string {
	const n = 300
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// retryAfter reads Retry-After, or MISP's X-Rate-Limit-Reset (seconds
// until the rate-limit window resets).
func (c *Client) retryAfter(h http.Header) time.Duration {
	if d := httpx.ParseRetryAfter(h.Get("Retry-After"), c.now()); d > 0 {
		return d
	}
	if v := strings.TrimSpace(h.Get("X-Rate-Limit-Reset")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs > 0 && secs < 1<<31 {
			return time.Duration(secs) * time.Second
		}
	}
	return 0
}

// flattenErrors turns MISP's errors value (a string, field → []string,
// field → string, or nested maps such as {"Event":{field:[…]}}) into
// field → messages, nested keys joined with dots.
func flattenErrors(raw json.RawMessage) map[string][]string {
	out := map[string][]string{}
	flattenInto(out, "", raw)
	return out
}

func flattenInto(out map[string][]string, prefix string, raw json.RawMessage) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	key := prefix
	if key == "" {
		key = "error"
	}
	switch raw[0] {
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			out[key] = append(out[key], string(raw))
			return
		}
		for k, v := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flattenInto(out, p, v)
		}
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			out[key] = append(out[key], string(raw))
			return
		}
		for _, it := range items {
			flattenInto(out, prefix, it)
		}
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out[key] = append(out[key], s)
		}
	default:
		out[key] = append(out[key], string(raw))
	}
}

// AddEvent creates an event with POST /events/add/metadata:1 (the answer
// leaves the attributes out) and returns it as MISP stored it. Send it
// unpublished and without attributes, then add them with
// [Client.AddAttributes].
//
// When ev.UUID is already taken MISP does not create a second event: it
// answers 404 with a Location header and the JSON "Event already exists"
// body (302 on some setups), whoever owns that event. AddEvent then looks
// the existing event up by UUID and returns it, with its Orgc, Tag and
// attribute_count: the caller must check it is its own before filling it.
// A blocklisted UUID (a deleted event's) gives ErrEventBlocked; an
// organisation blocklist ErrForbidden.
func (c *Client) AddEvent(ctx context.Context, ev Event) (Event, error) {
	const op = "misp: add event"
	ev.UUID = strings.ToLower(ev.UUID)
	a, err := c.call(ctx, op, http.MethodPost, "/events/add/metadata:1", struct {
		Event Event `json:"Event"`
	}{ev})
	if err != nil {
		return Event{}, err
	}
	if a.ok() {
		var out struct {
			Event Event `json:"Event"`
		}
		if err := decode(op, a, &out); err != nil {
			return Event{}, err
		}
		if out.Event.ID == "" && out.Event.UUID == "" {
			return Event{}, &httpx.DecodeError{Op: op, Err: errors.New("answer has no Event")}
		}
		return out.Event, nil
	}
	if ev.UUID != "" && alreadyExists(a) {
		return c.existingEvent(ctx, op, ev.UUID)
	}
	return Event{}, c.apiError(op, a, ErrForbidden)
}

// alreadyExists reports whether an /events/add answer says the UUID is
// taken: a redirect (or 404) whose Location points at an event, or a 404
// saying so (EventsController::add, misp.md §4.1).
func alreadyExists(a answer) bool {
	if loc := a.header.Get("Location"); loc != "" && (a.status/100 == 3 || a.status == http.StatusNotFound) {
		if u, err := url.Parse(loc); err == nil && strings.Contains(u.Path, "/events/") {
			return true
		}
	}
	if a.status == http.StatusNotFound || a.status/100 == 3 {
		if eb, ok := parseErrorBody(a); ok && strings.Contains(eb.text(), "already exists") {
			return true
		}
	}
	return false
}

func (c *Client) existingEvent(ctx context.Context, op, uuid string) (Event, error) {
	evs, err := c.SearchEvents(ctx, SearchQuery{UUID: uuid, Metadata: true})
	if err != nil {
		return Event{}, fmt.Errorf("%s: look up existing event %s: %w", op, uuid, err)
	}
	for _, e := range evs {
		if strings.EqualFold(e.UUID, uuid) {
			return e, nil
		}
	}
	return Event{}, fmt.Errorf("%s: event %s exists but the search does not return it: %w", op, uuid, ErrNotFound)
}

// EventExists reports whether an event (by id or UUID) exists and is
// visible, with HEAD /events/view/{id}: 200 yes, 404 no. A 403 (which has no
// body on HEAD) is taken as a refused key: ErrAuth.
func (c *Client) EventExists(ctx context.Context, idOrUUID string) (bool, error) {
	const op = "misp: check event"
	a, err := c.call(ctx, op, http.MethodHead, "/events/view/"+url.PathEscape(idOrUUID), nil)
	if err != nil {
		return false, err
	}
	switch {
	case a.status == http.StatusOK:
		return true, nil
	case a.status == http.StatusNotFound:
		return false, nil
	}
	return false, c.apiError(op, a, ErrAuth)
}

// SearchEvents runs POST /events/restSearch and returns the matching events
// (no match: none, no error). Set q.Metadata to leave attributes out.
func (c *Client) SearchEvents(ctx context.Context, q SearchQuery) ([]Event, error) {
	const op = "misp: search events"
	a, err := c.call(ctx, op, http.MethodPost, "/events/restSearch", struct {
		ReturnFormat string `json:"returnFormat"`
		SearchQuery
	}{"json", q})
	if err != nil {
		return nil, err
	}
	if !a.ok() {
		return nil, c.apiError(op, a, ErrForbidden)
	}
	type wrapped struct {
		Event Event `json:"Event"`
	}
	var items []wrapped
	if b := bytes.TrimSpace(a.body); len(b) > 0 && b[0] == '[' {
		err = decode(op, a, &items)
	} else {
		var out struct {
			Response []wrapped `json:"response"`
		}
		err = decode(op, a, &out)
		items = out.Response
	}
	if err != nil {
		return nil, err
	}
	evs := make([]Event, 0, len(items))
	for _, it := range items {
		evs = append(evs, it.Event)
	}
	return evs, nil
}

// PublishEvent publishes an event (by id or UUID) with POST
// /events/publish/{id}, without e-mail alerts. Every later attribute added
// unpublishes it again: publish once, after the last chunk of a run.
func (c *Client) PublishEvent(ctx context.Context, idOrUUID string) error {
	const op = "misp: publish event"
	a, err := c.call(ctx, op, http.MethodPost, "/events/publish/"+url.PathEscape(idOrUUID), nil)
	if err != nil {
		return err
	}
	if !a.ok() {
		return c.apiError(op, a, ErrForbidden)
	}
	var out errorBody
	if err := decode(op, a, &out); err != nil {
		return err
	}
	if out.Saved != nil && !*out.Saved {
		return &Error{Kind: ErrValidation, Status: &httpx.StatusError{Op: op, StatusCode: a.status, Detail: clip(out.text())}}
	}
	return nil
}

// DescribeTypes fetches GET /attributes/describeTypes.json: the types and
// categories the instance knows. Use it at start-up to check the mapping.
func (c *Client) DescribeTypes(ctx context.Context) (*DescribeTypes, error) {
	const op = "misp: describe types"
	a, err := c.call(ctx, op, http.MethodGet, "/attributes/describeTypes.json", nil)
	if err != nil {
		return nil, err
	}
	if !a.ok() {
		return nil, c.apiError(op, a, ErrForbidden)
	}
	dt, err := ParseDescribeTypes(a.body)
	if err != nil {
		return nil, &httpx.DecodeError{Op: op, Err: err}
	}
	return dt, nil
}

// Me fetches GET /users/view/me: the API user, its role and its
// organisation (the owner of every event it creates).
func (c *Client) Me(ctx context.Context) (User, error) {
	const op = "misp: view own user"
	a, err := c.call(ctx, op, http.MethodGet, "/users/view/me", nil)
	if err != nil {
		return User{}, err
	}
	if !a.ok() {
		return User{}, c.apiError(op, a, ErrAuth)
	}
	var u User
	if err := decode(op, a, &u); err != nil {
		return User{}, err
	}
	if u.Organisation.ID == "" && u.Organisation.Name == "" {
		return User{}, &httpx.DecodeError{Op: op, Err: errors.New("answer has no Organisation")}
	}
	return u, nil
}

// ServerVersion fetches GET /servers/getVersion, the cheap call that checks
// the URL, the key and the role.
func (c *Client) ServerVersion(ctx context.Context) (Version, error) {
	const op = "misp: get version"
	a, err := c.call(ctx, op, http.MethodGet, "/servers/getVersion", nil)
	if err != nil {
		return Version{}, err
	}
	if !a.ok() {
		return Version{}, c.apiError(op, a, ErrAuth)
	}
	var v Version
	if err := decode(op, a, &v); err != nil {
		return Version{}, err
	}
	return v, nil
}

// SearchAttributes runs POST /attributes/restSearch and returns the
// matching attributes (none: no error), each with its event_id.
func (c *Client) SearchAttributes(ctx context.Context, q AttributeQuery) ([]Attribute, error) {
	const op = "misp: search attributes"
	a, err := c.call(ctx, op, http.MethodPost, "/attributes/restSearch", struct {
		ReturnFormat string `json:"returnFormat"`
		AttributeQuery
	}{"json", q})
	if err != nil {
		return nil, err
	}
	if !a.ok() {
		return nil, c.apiError(op, a, ErrForbidden)
	}
	var out struct {
		Response struct {
			Attribute []Attribute `json:"Attribute"`
		} `json:"response"`
	}
	if err := decode(op, a, &out); err != nil {
		return nil, err
	}
	return out.Response.Attribute, nil
}
