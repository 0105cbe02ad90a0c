package app

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/tqflow/tqflow/pkg/logging"
)

// Progress reports a long step (a fetch's pages, a replay, a rules file
// parsed): a progress bar when w is a terminal, else a log line at most
// every Interval. It is safe for concurrent use; a nil *Progress reports
// nothing.
type Progress struct {
	what     string
	unit     string
	total    int64
	log      *slog.Logger
	bar      *progressbar.ProgressBar
	now      func() time.Time
	interval time.Duration

	mu       sync.Mutex
	n        int64
	last     time.Time
	finished bool
}

// ProgressOptions configures [NewProgress].
type ProgressOptions struct {
	// What names the step, e.g. "fetch ctr"; Unit what is counted.
	What, Unit string
	// Total is the count at the end; -1 when unknown (a spinner).
	Total int64
	// Interval is the time between log lines; 5s when zero.
	Interval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Terminal forces the bar (true) whatever w is; tests use it.
	Terminal bool
}

// NewProgress returns a Progress drawing on w when it is a terminal (or
// o.Terminal), else logging to log.
func NewProgress(w io.Writer, log *slog.Logger, o ProgressOptions) *Progress {
	p := &Progress{what: o.What, unit: o.Unit, total: o.Total, log: log, now: o.Now, interval: o.Interval}
	if p.now == nil {
		p.now = time.Now
	}
	if p.interval <= 0 {
		p.interval = 5 * time.Second
	}
	p.last = p.now()
	term := o.Terminal
	if f, ok := w.(*os.File); ok && logging.IsTerminal(f) {
		term = true
	}
	if term && w != nil {
		p.bar = progressbar.NewOptions64(o.Total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(o.What),
			progressbar.OptionShowCount(),
			progressbar.OptionSetItsString(o.Unit),
			progressbar.OptionShowIts(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(w, "\n") }),
		)
	}
	return p
}

// Add counts n more.
func (p *Progress) Add(n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += int64(n)
	p.report()
}

// Set sets the count.
func (p *Progress) Set(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = n
	p.report()
}

func (p *Progress) report() {
	if p.bar != nil {
		_ = p.bar.Set64(p.n)
		return
	}
	if t := p.now(); p.log != nil && t.Sub(p.last) >= p.interval {
		p.last = t
		p.log.Info("progress", "step", p.what, "done", p.n, "unit", p.unit, "total", p.total)
	}
}

// Describe changes the bar's description (what was done so far, in
// words); log lines keep theirs.
func (p *Progress) Describe(s string) {
	if p == nil || p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bar.Describe(s)
}

// Done ends the bar (a log line has nothing to end); a bar that counted
// nothing leaves no trace. Done twice is Done once.
func (p *Progress) Done() {
	if p == nil || p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 || p.finished {
		return
	}
	p.finished = true
	_ = p.bar.Finish()
}
