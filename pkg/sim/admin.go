package sim

import (
	"net/http"
	"strings"
)

// AdminPrefix starts the path of every admin route. Faults never apply to it.
const AdminPrefix = "/_sim/"

// Base is what every simulator embeds: its fault injector, ledger and
// request statistics.
type Base struct {
	Faults *Injector
	Ledger *Ledger
	Stats  *Stats
}

// NewBase returns a Base with no faults, an empty ledger and zero stats.
func NewBase(seed uint64) Base {
	return Base{Faults: NewInjector(seed), Ledger: NewLedger(), Stats: NewStats()}
}

// Handler returns api wrapped in the statistics and the fault injector,
// with the admin routes (GET/PUT /_sim/faults, GET /_sim/ledger,
// GET /_sim/stats) served beside it and extra admin routes from more
// (pattern to handler, patterns under /_sim/).
func (b Base) Handler(api http.Handler, more map[string]http.Handler) http.Handler {
	admin := http.NewServeMux()
	admin.HandleFunc(AdminPrefix+"faults", b.Faults.serveAdmin)
	admin.HandleFunc(AdminPrefix+"ledger", b.Ledger.serveAdmin)
	admin.HandleFunc(AdminPrefix+"stats", b.Stats.serveAdmin)
	for p, h := range more {
		admin.Handle(p, h)
	}
	served := b.Stats.Wrap(b.Faults.Wrap(api))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, AdminPrefix) {
			admin.ServeHTTP(w, r)
			return
		}
		served.ServeHTTP(w, r)
	})
}
