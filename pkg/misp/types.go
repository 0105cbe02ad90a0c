package misp

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// NumStr is an id, timestamp or enum value. MISP sends these as JSON strings
// ("123"), but an instance upgraded on PHP ≥ 8.1 without
// PDO::ATTR_STRINGIFY_FETCHES sends native numbers; NumStr decodes both, and
// null as "". It encodes as a JSON string, as MISP and PyMISP do.
type NumStr string

// UnmarshalJSON implements json.Unmarshaler.
func (n *NumStr) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return errEmptyJSON
	case string(b) == "null":
		*n = ""
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*n = NumStr(s)
		return nil
	case string(b) == "true":
		*n = "1"
		return nil
	case string(b) == "false":
		*n = "0"
		return nil
	}
	var num json.Number
	if err := json.Unmarshal(b, &num); err != nil {
		return err
	}
	*n = NumStr(num.String())
	return nil
}

// String returns the value as sent.
func (n NumStr) String() string { return string(n) }

// Int returns the value as an integer, or an error when it is not one.
func (n NumStr) Int() (int64, error) { return strconv.ParseInt(string(n), 10, 64) }

// Count is a counter such as an event's attribute_count. It decodes from a
// JSON string or number (null gives 0) and encodes as a JSON string.
type Count int64

// UnmarshalJSON implements json.Unmarshaler.
func (c *Count) UnmarshalJSON(b []byte) error {
	var s NumStr
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if s == "" {
		*c = 0
		return nil
	}
	v, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(s), 64)
		if ferr != nil {
			return err
		}
		v = int64(f)
	}
	*c = Count(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (c Count) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(c), 10) + `"`), nil
}

var errEmptyJSON = errors.New("empty JSON value")

// Distribution values (misp.md §6.1).
const (
	DistributionOrganisation = "0" // Your organisation only.
	DistributionCommunity    = "1" // This community only.
	DistributionConnected    = "2" // Connected communities.
	DistributionAll          = "3" // All communities.
	DistributionSharingGroup = "4" // A sharing group; needs SharingGroupID.
	DistributionInherit      = "5" // Inherit the event's (attributes only).
)

// Threat levels (misp.md §6.1).
const (
	ThreatLevelHigh      = "1"
	ThreatLevelMedium    = "2"
	ThreatLevelLow       = "3"
	ThreatLevelUndefined = "4"
)

// Analysis levels (misp.md §6.1).
const (
	AnalysisInitial   = "0"
	AnalysisOngoing   = "1"
	AnalysisCompleted = "2"
)

// Tag is a MISP tag, on an event or an attribute. Only Name is needed when
// sending; MISP matches it case-insensitively against existing tags and
// silently drops an unknown tag unless the user may create tags.
type Tag struct {
	ID         NumStr `json:"id,omitempty"`
	Name       string `json:"name"`
	Colour     string `json:"colour,omitempty"`
	Exportable *bool  `json:"exportable,omitempty"`
	// Local asks for a local (not synchronised) tag; honoured on events.
	Local bool `json:"local,omitempty"`
}

// User is GET /users/view/me's answer, the parts tqflow reads.
type User struct {
	// User holds the user's own fields.
	User struct {
		ID    NumStr `json:"id"`
		OrgID NumStr `json:"org_id"`
		Email string `json:"email"`
	} `json:"User"`
	// Role says what the user may do.
	Role struct {
		PermPublish   bool `json:"perm_publish"`
		PermTagEditor bool `json:"perm_tag_editor"`
	} `json:"Role"`
	// Organisation is the user's organisation.
	Organisation Org `json:"Organisation"`
}

// Org is an organisation as MISP shows it on an event (Org, Orgc).
type Org struct {
	ID   NumStr `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	UUID string `json:"uuid,omitempty"`
}

// UnmarshalJSON implements json.Unmarshaler. Besides the object it accepts
// a string: /events/index rows carry both "org" (a string) and "Org", and
// encoding/json matches field names case-insensitively. A string only fills
// Name of a still-empty Org.
func (o *Org) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if *o == (Org{}) {
			o.Name = s
		}
		return nil
	}
	type plain Org
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*o = Org(p)
	return nil
}

// Event is a MISP event. When sending, Info is required and the zero values
// of the other fields are left out so that MISP applies its defaults;
// Published is always sent (false unless set). The tqflow exporter sends
// UUID (see [EventUUID]), Info, Date, Distribution, ThreatLevelID, Analysis
// and Tag.
type Event struct {
	ID               NumStr      `json:"id,omitempty"`
	UUID             string      `json:"uuid,omitempty"`
	Info             string      `json:"info"`
	Date             string      `json:"date,omitempty"`
	ThreatLevelID    NumStr      `json:"threat_level_id,omitempty"`
	Analysis         NumStr      `json:"analysis,omitempty"`
	Distribution     NumStr      `json:"distribution,omitempty"`
	SharingGroupID   NumStr      `json:"sharing_group_id,omitempty"`
	Published        bool        `json:"published"`
	Timestamp        NumStr      `json:"timestamp,omitempty"`
	PublishTimestamp NumStr      `json:"publish_timestamp,omitempty"`
	AttributeCount   Count       `json:"attribute_count,omitempty"`
	OrgID            NumStr      `json:"org_id,omitempty"`
	OrgcID           NumStr      `json:"orgc_id,omitempty"`
	Locked           bool        `json:"locked,omitempty"`
	Org              *Org        `json:"Org,omitempty"`
	Orgc             *Org        `json:"Orgc,omitempty"`
	Tag              []Tag       `json:"Tag,omitempty"`
	Attribute        []Attribute `json:"Attribute,omitempty"`
}

// Attribute is a MISP attribute. When sending, Type and Value are required;
// Category and Distribution are left out when empty (MISP then uses the
// type's default category and MISP.default_attribute_distribution). ToIDs is
// always sent: take it from [Mapping.ToIDs] to keep MISP's default.
type Attribute struct {
	ID                 NumStr `json:"id,omitempty"`
	EventID            NumStr `json:"event_id,omitempty"`
	UUID               string `json:"uuid,omitempty"`
	Type               string `json:"type"`
	Category           string `json:"category,omitempty"`
	Value              string `json:"value"`
	ToIDs              bool   `json:"to_ids"`
	Distribution       NumStr `json:"distribution,omitempty"`
	SharingGroupID     NumStr `json:"sharing_group_id,omitempty"`
	Comment            string `json:"comment,omitempty"`
	Timestamp          NumStr `json:"timestamp,omitempty"`
	FirstSeen          string `json:"first_seen,omitempty"`
	LastSeen           string `json:"last_seen,omitempty"`
	Deleted            bool   `json:"deleted,omitempty"`
	DisableCorrelation bool   `json:"disable_correlation,omitempty"`
	Tag                []Tag  `json:"Tag,omitempty"`
}

// SearchQuery is the body of POST /events/restSearch. Every field is
// optional; returnFormat is always json. EventInfo is an exact match unless
// it starts or ends with %, which turns on SQL LIKE.
type SearchQuery struct {
	// UUID is an event uuid, or an attribute uuid (which finds its event).
	UUID string `json:"uuid,omitempty"`
	// EventID is an event id or uuid.
	EventID   string   `json:"eventid,omitempty"`
	EventInfo string   `json:"eventinfo,omitempty"`
	EventTags []string `json:"event_tags,omitempty"`
	// From and To filter on the event date (YYYY-MM-DD).
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	Published *bool  `json:"published,omitempty"`
	// Metadata leaves the attributes out: use it, a 25,000-attribute event
	// is heavy.
	Metadata bool `json:"metadata,omitempty"`
	Limit    int  `json:"limit,omitempty"`
	Page     int  `json:"page,omitempty"`
}

// Version is the answer of GET /servers/getVersion.
type Version struct {
	Version         string   `json:"version"`
	PermSync        bool     `json:"perm_sync"`
	PermSighting    bool     `json:"perm_sighting"`
	RequestEncoding []string `json:"request_encoding"`
}

// AttributeQuery is the body of POST /attributes/restSearch, the filters
// tqflow uses. Values are matched as MySQL compares value1 and value2:
// under utf8mb3_unicode_ci, so a case or accent variant matches too.
type AttributeQuery struct {
	// EventID restricts the search to these events (ids or uuids).
	EventID []string `json:"eventid,omitempty"`
	// Type restricts the search to one attribute type.
	Type string `json:"type,omitempty"`
	// Value lists the values to find (any of them).
	Value []string `json:"value,omitempty"`
	Limit int      `json:"limit,omitempty"`
	Page  int      `json:"page,omitempty"`
}
