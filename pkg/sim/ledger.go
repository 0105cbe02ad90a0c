package sim

import (
	"net/http"
	"sync"
	"time"
)

// Entry is one effective change a simulator made to its state: an attribute
// added, a status set, an event created. A request that changes nothing (a
// retried write whose effect is already there) leaves no entry, so a test
// can assert "exactly these writes, each once".
type Entry struct {
	// Seq numbers entries from 1 in the order they were recorded.
	Seq int64 `json:"seq"`
	// At is when the change was made.
	At time.Time `json:"at"`
	// System names the simulated server: "threatq", "misp".
	System string `json:"system"`
	// Op names the change, e.g. "attribute.add", "status.set".
	Op string `json:"op"`
	// Object names what was changed, e.g. "indicator/42".
	Object string `json:"object"`
	// Name and Value describe the change, e.g. an attribute's name and value.
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`
	// Sources, for a change to a row that has sources of its own (a
	// ThreatQ attribute row deleted), are that row's sources: whose row
	// it was.
	Sources []string `json:"sources,omitempty"`
}

// Ledger records [Entry] values. It is safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	entries []Entry
	now     func() time.Time
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{now: time.Now} }

// Record appends e, numbering and timing it.
func (l *Ledger) Record(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Seq = int64(len(l.entries)) + 1
	if e.At.IsZero() {
		e.At = l.now()
	}
	l.entries = append(l.entries, e)
}

// Entries returns a copy of every entry, oldest first.
func (l *Ledger) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Entry(nil), l.entries...)
}

// Len returns the number of entries.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func (l *Ledger) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, http.StatusOK, l.Entries())
}
