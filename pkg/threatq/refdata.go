package threatq

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/httpx"
)

// refStale is the age after which reference data is read again when a
// name is not found in it (an admin may have just added a status).
const refStale = 30 * time.Second

// refCache is one list of reference data.
type refCache struct {
	items []Type
	at    time.Time
}

// wireNamed is a type or status as the reference routes send it.
type wireNamed struct {
	ID    flexInt `json:"id"`
	Name  string  `json:"name"`
	Class string  `json:"class"`
}

// wireObject is an object definition of GET /api/objects.
type wireObject struct {
	Collection string          `json:"collection"`
	Name       string          `json:"name"`
	Types      list[wireNamed] `json:"types"`
	Statuses   list[wireNamed] `json:"statuses"`
}

// reference returns the cached list key, reading it with load when absent,
// or when fresh is set and the cache is older than refStale.
func (c *Client) reference(ctx context.Context, key string, fresh bool, load func(context.Context) ([]Type, error)) ([]Type, error) {
	c.refMu.Lock()
	rc := c.refs[key]
	c.refMu.Unlock()
	if rc != nil && (!fresh || c.now().Sub(rc.at) < refStale) {
		return rc.items, nil
	}
	items, err := load(ctx)
	if err != nil {
		return nil, err
	}
	c.refMu.Lock()
	c.refs[key] = &refCache{items: items, at: c.now()}
	c.refMu.Unlock()
	return items, nil
}

// getNamed reads a list of types or statuses from path.
func (c *Client) getNamed(ctx context.Context, op, path string) ([]Type, error) {
	var env envelope[list[wireNamed]]
	r := request{op: op, method: http.MethodGet, path: path, idempotent: true, query: url.Values{"limit": {"1000"}}}
	if err := c.json(ctx, r, &env); err != nil {
		return nil, err
	}
	out := make([]Type, 0, len(env.Data))
	for _, w := range env.Data {
		if w.Name != "" {
			out = append(out, Type{ID: int64(w.ID), Name: w.Name, Class: w.Class})
		}
	}
	return out, nil
}

// lookup finds name in the list key, reading it again once when absent
// from a stale cache: as spelt when exact (statuses, which the vendor SDK
// resolves by exact name), else ignoring case and surrounding space
// (types).
func (c *Client) lookup(ctx context.Context, key, what, name string, exact bool, load func(context.Context) ([]Type, error)) (int64, error) {
	want := strings.TrimSpace(name)
	match := func(t Type) bool { return strings.EqualFold(strings.TrimSpace(t.Name), want) }
	if exact {
		match = func(t Type) bool { return t.Name == name }
	}
	for _, fresh := range []bool{false, true} {
		items, err := c.reference(ctx, key, fresh, load)
		if err != nil {
			return 0, fmt.Errorf("resolve %s %q: %w", what, name, err)
		}
		for _, t := range items {
			if match(t) {
				return t.ID, nil
			}
		}
	}
	return 0, fmt.Errorf("resolve %s %q: %w", what, name, ErrNotFound)
}

// IndicatorTypes returns the instance's indicator types
// (GET /api/indicator/types), cached.
func (c *Client) IndicatorTypes(ctx context.Context) ([]Type, error) {
	return c.reference(ctx, "indicator.types", false, c.loadIndicatorTypes)
}

func (c *Client) loadIndicatorTypes(ctx context.Context) ([]Type, error) {
	return c.getNamed(ctx, "threatq: list indicator types", "/api/indicator/types")
}

// IndicatorTypeID returns the id of the indicator type named name, matched
// case-insensitively; an unknown name wraps [ErrNotFound].
func (c *Client) IndicatorTypeID(ctx context.Context, name string) (int, error) {
	id, err := c.lookup(ctx, "indicator.types", "indicator type", name, false, c.loadIndicatorTypes)
	return int(id), err
}

// IndicatorStatuses returns the instance's indicator statuses
// (GET /api/indicator/statuses), cached.
func (c *Client) IndicatorStatuses(ctx context.Context) ([]Status, error) {
	ts, err := c.reference(ctx, "indicator.statuses", false, c.loadIndicatorStatuses)
	return statuses(ts), err
}

func (c *Client) loadIndicatorStatuses(ctx context.Context) ([]Type, error) {
	return c.getNamed(ctx, "threatq: list indicator statuses", "/api/indicator/statuses")
}

// IndicatorStatusID returns the id of the indicator status named name,
// exactly as spelt (as the vendor SDK resolves it); an unknown name wraps
// [ErrNotFound].
func (c *Client) IndicatorStatusID(ctx context.Context, name string) (int, error) {
	id, err := c.lookup(ctx, "indicator.statuses", "indicator status", name, true, c.loadIndicatorStatuses)
	return int(id), err
}

// SignatureTypes returns the instance's signature types
// (GET /api/signature/types), cached.
func (c *Client) SignatureTypes(ctx context.Context) ([]Type, error) {
	return c.reference(ctx, "signature.types", false, c.loadSignatureTypes)
}

func (c *Client) loadSignatureTypes(ctx context.Context) ([]Type, error) {
	return c.getNamed(ctx, "threatq: list signature types", "/api/signature/types")
}

// SignatureTypeID returns the id of the signature type named name, matched
// case-insensitively. A stock instance has no "Suricata" type: the error
// then wraps [ErrNotFound], and the caller falls back to "Snort".
func (c *Client) SignatureTypeID(ctx context.Context, name string) (int, error) {
	id, err := c.lookup(ctx, "signature.types", "signature type", name, false, c.loadSignatureTypes)
	return int(id), err
}

// SignatureStatuses returns the instance's signature statuses, from the
// signature object of GET /api/objects (where the vendor SDK reads them)
// or, where that answers 4xx, from GET /api/signature/statuses. Cached.
func (c *Client) SignatureStatuses(ctx context.Context) ([]Status, error) {
	ts, err := c.reference(ctx, "signature.statuses", false, c.loadSignatureStatuses)
	return statuses(ts), err
}

// SignatureStatusID returns the id of the signature status named name,
// exactly as spelt (contracts/threatq.md corrections 4: the instance may
// say "Non-malicious" or "Non-Malicious", and only its own spelling
// resolves); an unknown name wraps [ErrNotFound].
func (c *Client) SignatureStatusID(ctx context.Context, name string) (int, error) {
	id, err := c.lookup(ctx, "signature.statuses", "signature status", name, true, c.loadSignatureStatuses)
	return int(id), err
}

func (c *Client) loadSignatureStatuses(ctx context.Context) ([]Type, error) {
	const op = "threatq: list objects"
	var env envelope[list[wireObject]]
	err := c.json(ctx, request{op: op, method: http.MethodGet, path: "/api/objects", idempotent: true}, &env)
	var se *httpx.StatusError
	if errors.As(err, &se) && se.StatusCode >= 400 && se.StatusCode < 500 {
		return c.getNamed(ctx, "threatq: list signature statuses", "/api/signature/statuses")
	}
	if err != nil {
		return nil, err
	}
	for _, o := range env.Data {
		if strings.EqualFold(o.Collection, "signatures") || strings.EqualFold(o.Name, "signature") {
			out := make([]Type, 0, len(o.Statuses))
			for _, s := range o.Statuses {
				out = append(out, Type{ID: int64(s.ID), Name: s.Name})
			}
			return out, nil
		}
	}
	return c.getNamed(ctx, "threatq: list signature statuses", "/api/signature/statuses")
}

// StatusName is a configured status name to resolve at start-up.
type StatusName struct {
	// Var is the setting that names it, e.g. CTR_STATUS; it names the
	// status in errors.
	Var string
	// Name is the status name, as ThreatQ spells it.
	Name string
	// Signature says it is a signature status; else an indicator one.
	Signature bool
}

// ResolveStatuses resolves every name to its id, exactly as spelt, and
// returns the ids by Var. Empty names are skipped. Each unknown name is an
// [*UnknownStatusError] listing the instance's statuses of its kind; they
// are joined, so one start-up says everything that is wrong.
func (c *Client) ResolveStatuses(ctx context.Context, names []StatusName) (map[string]int, error) {
	ids := make(map[string]int, len(names))
	var errs []error
	for _, n := range names {
		if n.Name == "" {
			continue
		}
		kind, resolve, list := "indicator", c.IndicatorStatusID, c.IndicatorStatuses
		if n.Signature {
			kind, resolve, list = "signature", c.SignatureStatusID, c.SignatureStatuses
		}
		id, err := resolve(ctx, n.Name)
		if errors.Is(err, ErrNotFound) {
			all, lerr := list(ctx)
			if lerr != nil {
				errs = append(errs, fmt.Errorf("resolve %s: %w", n.Var, lerr))
				continue
			}
			avail := make([]string, len(all))
			for i, s := range all {
				avail[i] = s.Name
			}
			errs = append(errs, &UnknownStatusError{Var: n.Var, Name: n.Name, Kind: kind, Available: avail})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", n.Var, err)
		}
		ids[n.Var] = id
	}
	return ids, errors.Join(errs...)
}

func statuses(ts []Type) []Status {
	if ts == nil {
		return nil
	}
	out := make([]Status, len(ts))
	for i, t := range ts {
		out[i] = Status{ID: t.ID, Name: t.Name}
	}
	return out
}
