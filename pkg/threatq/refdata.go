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

// lookup finds name (case-insensitively, ignoring surrounding space) in the
// list key, reading it again once when absent from a stale cache.
func (c *Client) lookup(ctx context.Context, key, what, name string, load func(context.Context) ([]Type, error)) (int64, error) {
	want := strings.TrimSpace(name)
	for _, fresh := range []bool{false, true} {
		items, err := c.reference(ctx, key, fresh, load)
		if err != nil {
			return 0, fmt.Errorf("resolve %s %q: %w", what, name, err)
		}
		for _, t := range items {
			if strings.EqualFold(strings.TrimSpace(t.Name), want) {
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
	id, err := c.lookup(ctx, "indicator.types", "indicator type", name, c.loadIndicatorTypes)
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
// matched case-insensitively; an unknown name wraps [ErrNotFound].
func (c *Client) IndicatorStatusID(ctx context.Context, name string) (int, error) {
	id, err := c.lookup(ctx, "indicator.statuses", "indicator status", name, c.loadIndicatorStatuses)
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
	id, err := c.lookup(ctx, "signature.types", "signature type", name, c.loadSignatureTypes)
	return int(id), err
}

// SignatureStatuses returns the instance's signature statuses, from GET
// /api/signature/statuses or, where that route does not exist (404), from
// the signature object of GET /api/objects. Cached.
func (c *Client) SignatureStatuses(ctx context.Context) ([]Status, error) {
	ts, err := c.reference(ctx, "signature.statuses", false, c.loadSignatureStatuses)
	return statuses(ts), err
}

// SignatureStatusID returns the id of the signature status named name,
// matched case-insensitively ("Non-malicious" and "Non-Malicious" are one);
// an unknown name wraps [ErrNotFound].
func (c *Client) SignatureStatusID(ctx context.Context, name string) (int, error) {
	id, err := c.lookup(ctx, "signature.statuses", "signature status", name, c.loadSignatureStatuses)
	return int(id), err
}

func (c *Client) loadSignatureStatuses(ctx context.Context) ([]Type, error) {
	ts, err := c.getNamed(ctx, "threatq: list signature statuses", "/api/signature/statuses")
	var se *httpx.StatusError
	if err == nil || !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		return ts, err
	}
	const op = "threatq: list objects"
	var env envelope[list[wireObject]]
	if err := c.json(ctx, request{op: op, method: http.MethodGet, path: "/api/objects", idempotent: true}, &env); err != nil {
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
	return nil, &httpx.DecodeError{Op: op, Err: errors.New("no signature object among the objects")}
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
