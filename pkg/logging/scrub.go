package logging

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
)

// Scrub replaces secrets in a text; *httpx.Scrubber's String method is
// one.
type Scrub func(string) string

// ScrubSet holds the scrub function a [ScrubHandler] applies. It starts
// empty and may be set later, once the configuration (and so the secrets)
// is known: attributes bound with Logger.With before then are scrubbed
// again when the set changes. It is safe for concurrent use.
type ScrubSet struct {
	f   atomic.Pointer[Scrub]
	gen atomic.Uint64
}

// Set makes f the scrub function.
func (s *ScrubSet) Set(f Scrub) {
	s.f.Store(&f)
	s.gen.Add(1)
}

func (s *ScrubSet) apply(text string) string {
	if f := s.f.Load(); f != nil && *f != nil {
		return (*f)(text)
	}
	return text
}

// ScrubHandler passes every record to the next handler with the secrets
// replaced in its message and in every attribute's text: strings, errors,
// Stringers, and other values whose text holds a secret.
type ScrubHandler struct {
	base slog.Handler
	set  *ScrubSet
	// ops are the WithAttrs and WithGroup calls made on this handler,
	// replayed on base with scrubbed attributes whenever the set changes.
	ops []scrubOp

	mu    sync.Mutex
	built slog.Handler
	gen   uint64
}

type scrubOp struct {
	group string
	attrs []slog.Attr
}

// NewScrubHandler returns a handler that scrubs with set before next.
func NewScrubHandler(next slog.Handler, set *ScrubSet) *ScrubHandler {
	return &ScrubHandler{base: next, set: set, built: next, gen: set.gen.Load()}
}

// next returns base with the bound attributes, scrubbed with the current
// set.
func (h *ScrubHandler) next() slog.Handler {
	gen := h.set.gen.Load()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.built != nil && h.gen == gen {
		return h.built
	}
	n := h.base
	for _, op := range h.ops {
		if op.attrs == nil {
			n = n.WithGroup(op.group)
			continue
		}
		as := make([]slog.Attr, len(op.attrs))
		for i, a := range op.attrs {
			as[i] = h.attr(a, 0)
		}
		n = n.WithAttrs(as)
	}
	h.built, h.gen = n, gen
	return n
}

// Enabled implements slog.Handler.
func (h *ScrubHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.base.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *ScrubHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.set.apply(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a, 0))
		return true
	})
	return h.next().Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *ScrubHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	return h.with(scrubOp{attrs: slices.Clone(as)})
}

// WithGroup implements slog.Handler.
func (h *ScrubHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(scrubOp{group: name})
}

func (h *ScrubHandler) with(op scrubOp) *ScrubHandler {
	ops := append(slices.Clip(h.ops), op)
	return &ScrubHandler{base: h.base, set: h.set, ops: ops}
}

// attr returns a with its text scrubbed.
func (h *ScrubHandler) attr(a slog.Attr, depth int) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.set.apply(v.String()))
	case slog.KindGroup:
		if depth > 8 {
			return slog.String(a.Key, "…")
		}
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = h.attr(ga, depth+1)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.set.apply(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, h.set.apply(x.String()))
		case []byte:
			return slog.String(a.Key, h.set.apply(string(x)))
		default:
			// Other values keep their form (a JSON object stays one)
			// unless their text holds a secret.
			if t := fmt.Sprint(x); h.set.apply(t) != t {
				return slog.String(a.Key, h.set.apply(t))
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
