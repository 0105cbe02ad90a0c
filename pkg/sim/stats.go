package sim

import (
	"net/http"
	"sort"
	"sync"
)

// Stats counts the requests a simulator answered, by route pattern (the
// [http.ServeMux] pattern that matched, e.g. "POST /api/indicators/query").
// It is safe for concurrent use.
type Stats struct {
	mu     sync.Mutex
	counts map[string]int64
	total  int64
}

// NewStats returns empty statistics.
func NewStats() *Stats { return &Stats{counts: make(map[string]int64)} }

// Wrap returns h counting every request it serves. It reads the pattern the
// mux inside h stored on the request, so h should be (or end in) a ServeMux.
func (s *Stats) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		key := r.Pattern
		if key == "" {
			key = r.Method + " (unmatched)"
		}
		s.mu.Lock()
		s.counts[key]++
		s.total++
		s.mu.Unlock()
	})
}

// Total returns the number of requests served.
func (s *Stats) Total() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Count returns the number of requests served by one route pattern.
func (s *Stats) Count(pattern string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[pattern]
}

// RouteCount is the number of requests of one route.
type RouteCount struct {
	Route string `json:"route"`
	Count int64  `json:"count"`
}

// Snapshot returns the counts by route, sorted by route.
func (s *Stats) Snapshot() []RouteCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RouteCount, 0, len(s.counts))
	for k, v := range s.counts {
		out = append(out, RouteCount{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Route < out[j].Route })
	return out
}

func (s *Stats) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Total  int64        `json:"total"`
		Routes []RouteCount `json:"routes"`
	}{s.Total(), s.Snapshot()})
}
