package cli

import (
	"io"
	"sync"

	"github.com/tqflow/tqflow/pkg/app"
	fetchersvc "github.com/tqflow/tqflow/services/fetcher/service"
)

// watchFetch draws a bar per indicator fetch on w when it is a terminal,
// counting the indicators read page by page. Elsewhere the fetcher's own
// periodic "fetch progress" log lines say as much.
func watchFetch(f *fetchersvc.Fetcher, w io.Writer) {
	var mu sync.Mutex
	bars := map[string]*app.Progress{}
	f.OnPage = func(job string, read int, done bool) {
		mu.Lock()
		defer mu.Unlock()
		b := bars[job]
		if b == nil {
			b = app.NewProgress(w, nil, app.ProgressOptions{What: "fetch " + job, Unit: "indicators", Total: -1})
			bars[job] = b
		}
		b.Set(int64(read))
		if done {
			b.Done()
			delete(bars, job)
		}
	}
}

// parseProgress returns the signature-loader's OnParsed hook: one bar on
// w, when it is a terminal, counting the rules lines parsed across files,
// and a func that ends it.
func parseProgress(w io.Writer) (onParsed func(file string, lines int), done func()) {
	bar := app.NewProgress(w, nil, app.ProgressOptions{What: "parse rulesets", Unit: "lines", Total: -1})
	return func(_ string, lines int) { bar.Add(lines) }, bar.Done
}
