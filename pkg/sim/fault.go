package sim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults says how a simulator misbehaves. The zero value is a healthy server.
type Faults struct {
	// Latency is added before every answer.
	Latency time.Duration `json:"latency,omitempty"`
	// ErrorRate is the share (0 to 1) of requests answered with ErrorStatus
	// and an empty body, as a load balancer in front of the server would.
	ErrorRate float64 `json:"error_rate,omitempty"`
	// ErrorStatus is the status of those answers; 503 when zero.
	ErrorStatus int `json:"error_status,omitempty"`
	// RateLimitRate is the share of requests answered 429 with Retry-After.
	RateLimitRate float64 `json:"rate_limit_rate,omitempty"`
	// RetryAfter is the Retry-After of those answers, in whole seconds (at
	// least one).
	RetryAfter time.Duration `json:"retry_after,omitempty"`
	// DropRate is the share of requests whose connection is closed with no
	// answer at all.
	DropRate float64 `json:"drop_rate,omitempty"`
	// PathPrefix limits the faults to requests whose path starts with it;
	// empty means every request. Admin routes are never faulted.
	PathPrefix string `json:"path_prefix,omitempty"`
	// Methods limits the faults to these methods; empty means every method.
	Methods []string `json:"methods,omitempty"`
}

func (f Faults) applies(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, AdminPrefix) {
		return false
	}
	if f.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, f.PathPrefix) {
		return false
	}
	if len(f.Methods) == 0 {
		return true
	}
	for _, m := range f.Methods {
		if strings.EqualFold(m, r.Method) {
			return true
		}
	}
	return false
}

// Injector applies [Faults] to an [http.Handler]. Its faults can be changed
// while it serves. It is safe for concurrent use.
type Injector struct {
	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	counts FaultCounts
}

// FaultCounts counts the faults an [Injector] has injected.
type FaultCounts struct {
	Errors      int64 `json:"errors"`
	RateLimited int64 `json:"rate_limited"`
	Dropped     int64 `json:"dropped"`
}

// NewInjector returns an Injector with no faults, whose random choices come
// from seed, so that a test run can be repeated.
func NewInjector(seed uint64) *Injector {
	return &Injector{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Set replaces the faults.
func (in *Injector) Set(f Faults) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = f
}

// Get returns the faults in force.
func (in *Injector) Get() Faults {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.faults
}

// Counts returns how many faults have been injected so far.
func (in *Injector) Counts() FaultCounts {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.counts
}

type verdict int

const (
	pass verdict = iota
	fail
	limit
	drop
)

func (in *Injector) decide(r *http.Request) (Faults, verdict) {
	in.mu.Lock()
	defer in.mu.Unlock()
	f := in.faults
	if !f.applies(r) {
		return Faults{}, pass
	}
	x := in.rng.Float64()
	switch {
	case x < f.DropRate:
		in.counts.Dropped++
		return f, drop
	case x < f.DropRate+f.RateLimitRate:
		in.counts.RateLimited++
		return f, limit
	case x < f.DropRate+f.RateLimitRate+f.ErrorRate:
		in.counts.Errors++
		return f, fail
	}
	return f, pass
}

// Wrap returns h with the faults applied in front of it.
func (in *Injector) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, v := in.decide(r)
		if f.Latency > 0 {
			t := time.NewTimer(f.Latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		switch v {
		case drop:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler) // HTTP/2 or a recorder: abort the stream instead.
		case limit:
			secs := max(1, int(f.RetryAfter/time.Second))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = fmt.Fprintln(w, `{"error":"too many requests"}`)
			return
		case fail:
			status := f.ErrorStatus
			if status == 0 {
				status = http.StatusServiceUnavailable
			}
			w.WriteHeader(status)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (in *Injector) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, struct {
			Faults Faults      `json:"faults"`
			Counts FaultCounts `json:"counts"`
		}{in.Get(), in.Counts()})
	case http.MethodPut, http.MethodPost:
		var f Faults
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
			return
		}
		in.Set(f)
		writeJSON(w, http.StatusOK, f)
	default:
		w.Header().Set("Allow", "GET, PUT")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
