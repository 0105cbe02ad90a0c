package mispsim

import (
	"fmt"
	"math/rand/v2"
	"net/http"

	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tqflow/tqflow/pkg/sim"
)

// Options configures a [Server].
type Options struct {
	// Seed drives the fault injector and the random UUIDs given to events
	// and attributes sent without one.
	Seed uint64
	// Keys are the accepted API keys (40 letters and digits each).
	Keys []string
	// MaxPayloadBytes, when positive, makes a request body larger than it
	// answer 413 with an HTML body, as nginx's client_max_body_size does
	// (1 MB by default in front of many MISPs).
	MaxPayloadBytes int64
	// AttributeLimit, when positive, makes GET /events/view of an event
	// holding more attributes answer 500 with PHP's "Allowed memory size
	// exhausted" page, as an instance with a small memory_limit does
	// (misp.md §5). MISP itself caps nothing: adding is never refused.
	AttributeLimit int
	// TimeoutAfter, when positive, makes a POST /attributes/add carrying
	// more attributes save only the first TimeoutAfter and then answer 504
	// with an HTML body: the batch is left partly saved, as after PHP's
	// max_execution_time or a proxy timeout.
	TimeoutAfter int
	// DescribeTypes is the describeTypes.json to serve and to validate
	// types and categories with (shared/data/misp/describeTypes.json). When
	// empty or not decodable, the simulator's own subset (the types of
	// misp.md §7)
	// is used.
	DescribeTypes []byte
	// KeepSaving, with TimeoutAfter, makes the PHP worker go on after
	// the 504 (a proxy gives up, PHP does not): the rest of the batch is
	// saved in the background, spread over KeepSaving. Until each is
	// saved, its UUID is taken but not yet visible, so a request resending
	// it gets 500 (the uuid UNIQUE KEY) and loses the rest of its batch.
	KeepSaving time.Duration
	// DuplicateEventStatus is the status of POST /events/add for a UUID
	// already used: 404 (the default: EventsController::add sends
	// Location, then throws NotFoundException, misp.md correction 3) or
	// 302. Both carry a Location header and the "Event already exists"
	// message.
	DuplicateEventStatus int
	// OldBlocklist answers a blocklisted event UUID as MISP before 2.4.150
	// did: 403 {"saved":false,…,"errors":[]} instead of "Event blocked by
	// event blocklist.".
	OldBlocklist bool
	// OrgBlocklisted makes every POST /events/add answer 403 "Event
	// blocked by organisation blocklist." (the user's organisation is on
	// the instance's organisation blocklist).
	OrgBlocklisted bool
	// HTMLErrors gives the 5xx answers injected by the fault injector (and
	// any other 5xx without a body) an HTML body, as PHP and proxies do.
	HTMLErrors bool
	// OrgName is the user's organisation; "ORGNAME" when empty.
	OrgName string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Server is a simulated MISP instance. It is safe for concurrent use.
type Server struct {
	sim.Base

	opts      Options
	types     *describeTypes
	typesJSON []byte
	keys      map[string]bool
	now       func() time.Time

	workers sync.WaitGroup // Saves still going on after a 504.

	statusMu sync.Mutex
	statuses map[int]int64

	mu         sync.Mutex
	rng        *rand.Rand
	events     []*event // id order
	byUUID     map[string]*event
	attrUUIDs  map[string]bool
	pending    map[string]bool // UUIDs a worker is still saving
	orgs       []*org          // [0] is the API user's
	blocklist  map[string]bool
	tags       map[string]*tag // by lower-cased name
	nextAttrID int64
	nextEvent  int64
}

type org struct {
	id         int64
	name, uuid string
}

type tag struct {
	id   int64
	name string
}

type event struct {
	id                    int64
	uuid, info, date      string
	threatLevel, analysis string
	distribution, sgID    string
	published             bool
	timestamp, published0 int64
	tags                  []*tag
	attrs                 []*attribute
	keys                  map[string]bool // type|category|collation key of value
	deleted               bool
	org                   *org
}

type attribute struct {
	id                  int64
	eventID             int64
	uuid, typ, category string
	value, comment      string
	distribution        string
	toIDs, noCorrelate  bool
	timestamp           int64
	firstSeen, lastSeen string
	tags                []*tag
}

// Event is an event as [Server.Events] reports it.
type Event struct {
	ID             int64
	UUID           string
	Info           string
	Date           string
	Distribution   string
	ThreatLevelID  string
	Analysis       string
	Published      bool
	AttributeCount int
	Tags           []string
	// Org is the owning organisation's name.
	Org string
}

// Attribute is an attribute as [Server.Attributes] reports it.
type Attribute struct {
	ID           int64
	UUID         string
	Type         string
	Category     string
	Value        string
	ToIDs        bool
	Distribution string
	Comment      string
	Tags         []string
}

// New returns a simulator with no events.
func New(opts Options) *Server {
	s := &Server{
		Base:      sim.NewBase(opts.Seed),
		opts:      opts,
		keys:      map[string]bool{},
		now:       opts.Now,
		rng:       rand.New(rand.NewPCG(opts.Seed^0x6d697370, opts.Seed+1)),
		byUUID:    map[string]*event{},
		attrUUIDs: map[string]bool{},
		pending:   map[string]bool{},
		statuses:  map[int]int64{},
		blocklist: map[string]bool{},
		tags:      map[string]*tag{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.opts.OrgName == "" {
		s.opts.OrgName = "ORGNAME"
	}
	if s.opts.DuplicateEventStatus == 0 {
		s.opts.DuplicateEventStatus = http.StatusNotFound
	}
	s.orgs = []*org{{id: 1, name: s.opts.OrgName, uuid: orgUUID}}
	for _, k := range opts.Keys {
		s.keys[k] = true
	}
	if dt, err := parseDescribeTypes(opts.DescribeTypes); err == nil {
		s.types, s.typesJSON = dt, opts.DescribeTypes
	} else {
		s.types = builtinTypes()
	}
	return s
}

// Events returns every event, in creation order, with its attribute count.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Event, 0, len(s.events))
	for _, e := range s.events {
		if e.deleted {
			continue
		}
		out = append(out, Event{
			ID: e.id, UUID: e.uuid, Info: e.info, Date: e.date, Distribution: e.distribution,
			ThreatLevelID: e.threatLevel, Analysis: e.analysis, Published: e.published,
			AttributeCount: len(e.attrs), Tags: tagNames(e.tags), Org: e.org.name,
		})
	}
	return out
}

// Attributes returns the attributes of an event (by UUID), in the order
// they were saved; none for an unknown event.
func (s *Server) Attributes(eventUUID string) []Attribute {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byUUID[strings.ToLower(eventUUID)]
	if e == nil || e.deleted {
		return nil
	}
	out := make([]Attribute, 0, len(e.attrs))
	for _, a := range e.attrs {
		out = append(out, Attribute{
			ID: a.id, UUID: a.uuid, Type: a.typ, Category: a.category, Value: a.value, ToIDs: a.toIDs,
			Distribution: a.distribution, Comment: a.comment, Tags: tagNames(a.tags),
		})
	}
	return out
}

// AddForeignEvent stores an event owned by another organisation (orgName),
// as a sync or another user of the instance would, with the given UUID,
// info, tags and count plain-text attributes. MISP hands it back for its
// UUID like any other event; adding attributes to it is refused with 403
// "You do not have permission to do that.".
func (s *Server) AddForeignEvent(uuid, info, orgName string, tags []string, count int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var o *org
	for _, x := range s.orgs {
		if x.name == orgName {
			o = x
		}
	}
	if o == nil {
		o = &org{id: int64(len(s.orgs) + 1), name: orgName, uuid: s.uuid4()}
		s.orgs = append(s.orgs, o)
	}
	s.insertEvent(uuid, info, tags, count, o)
}

// AddOwnEvent stores an event of the API user's organisation as another
// tool of it (or an analyst) would, with count plain-text attributes.
func (s *Server) AddOwnEvent(uuid, info string, tags []string, count int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.insertEvent(uuid, info, tags, count, s.orgs[0])
}

// insertEvent stores an event. Callers hold mu.
func (s *Server) insertEvent(uuid, info string, tags []string, count int, o *org) *event {
	e := &event{
		id: int64(len(s.events) + 1), uuid: strings.ToLower(uuid), info: info, date: s.today(),
		threatLevel: "4", analysis: "0", distribution: "0", timestamp: s.nowUnix(),
		keys: map[string]bool{}, org: o,
	}
	for _, t := range tags {
		e.tags = append(e.tags, s.tagFor(t))
	}
	s.events = append(s.events, e)
	s.byUUID[e.uuid] = e
	for i := range count {
		s.nextAttrID++
		a := &attribute{id: s.nextAttrID, eventID: e.id, uuid: s.uuid4(), typ: "text", category: "Other",
			value: "seeded " + strconv.Itoa(i), distribution: "5", timestamp: e.timestamp}
		e.attrs = append(e.attrs, a)
		e.keys["text|Other|"+foldKey(a.value)] = true
		s.attrUUIDs[a.uuid] = true
	}
	return e
}

// WaitWorkers waits until every save still going on after a 504 is done.
func (s *Server) WaitWorkers() { s.workers.Wait() }

// DeleteEvent deletes an event (by UUID) with its attributes, and puts its
// UUID on the event blocklist, as MISP does by default. It reports whether
// the event existed.
func (s *Server) DeleteEvent(uuid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	uuid = strings.ToLower(uuid)
	e := s.byUUID[uuid]
	if e == nil || e.deleted {
		return false
	}
	e.deleted = true
	for _, a := range e.attrs {
		delete(s.attrUUIDs, a.uuid)
	}
	e.attrs, e.keys = nil, nil
	delete(s.byUUID, uuid)
	s.blocklist[uuid] = true
	return true
}

func tagNames(ts []*tag) []string {
	if len(ts) == 0 {
		return nil
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.name
	}
	return out
}

// findEvent looks an event up by id or uuid. Callers hold mu.
func (s *Server) findEvent(idOrUUID string) *event {
	if id, err := strconv.ParseInt(idOrUUID, 10, 64); err == nil {
		if id >= 1 && id <= int64(len(s.events)) && !s.events[id-1].deleted {
			return s.events[id-1]
		}
		return nil
	}
	return s.byUUID[strings.ToLower(idOrUUID)]
}

// tagFor returns the tag named name (case-insensitive), creating it.
// Callers hold mu.
func (s *Server) tagFor(name string) *tag {
	k := strings.ToLower(name)
	if t := s.tags[k]; t != nil {
		return t
	}
	t := &tag{id: int64(len(s.tags) + 1), name: name}
	s.tags[k] = t
	return t
}

func (s *Server) tagList(in []inTag) []*tag {
	var out []*tag
	seen := map[*tag]bool{}
	for _, t := range in {
		if strings.TrimSpace(t.Name) == "" {
			continue
		}
		tg := s.tagFor(strings.TrimSpace(t.Name))
		if !seen[tg] {
			seen[tg] = true
			out = append(out, tg)
		}
	}
	return out
}

// uuid4 returns a random (seeded) version 4 UUID. Callers hold mu.
func (s *Server) uuid4() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := s.rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
