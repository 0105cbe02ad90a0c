package tqsim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/tqflow/tqflow/pkg/sim"
)

// AdminPrefix starts this simulator's own admin routes.
const AdminPrefix = sim.AdminPrefix + "threatq/"

// adminRoutes are the test hooks over HTTP, for a simulator running in its
// own process:
//
//	POST /_sim/threatq/touch      {"ids":[…], "at":"YYYY-MM-DD HH:MM:SS"} (at defaults to now)
//	POST /_sim/threatq/generate   {"seed":1,"n":1000,"start":…,"end":…,"types":[…]} (RFC 3339 times)
//	POST /_sim/threatq/reject     {"substr":"…"}
//	POST /_sim/threatq/searches   {"name":"…","api_query":{…}}
//	POST /_sim/threatq/expire-tokens
//	GET  /_sim/threatq/indicators/{id}
//	GET  /_sim/threatq/signatures
//	GET  /_sim/threatq/info       counts, tokens issued and reference ids
func (s *Server) adminRoutes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST " + AdminPrefix + "touch":          http.HandlerFunc(s.adminTouch),
		"POST " + AdminPrefix + "generate":       http.HandlerFunc(s.adminGenerate),
		"POST " + AdminPrefix + "reject":         http.HandlerFunc(s.adminReject),
		"POST " + AdminPrefix + "searches":       http.HandlerFunc(s.adminSearch),
		"POST " + AdminPrefix + "expire-tokens":  http.HandlerFunc(s.adminExpire),
		"GET " + AdminPrefix + "indicators/{id}": http.HandlerFunc(s.adminIndicator),
		"GET " + AdminPrefix + "signatures":      http.HandlerFunc(s.adminSignatures),
		"GET " + AdminPrefix + "info":            http.HandlerFunc(s.adminInfo),
	}
}

func adminDecode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, "decode admin request: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func (s *Server) adminTouch(w http.ResponseWriter, r *http.Request) {
	var in struct {
		IDs []int64 `json:"ids"`
		At  string  `json:"at"`
	}
	if !adminDecode(w, r, &in) {
		return
	}
	at := s.now()
	if in.At != "" {
		t, err := time.ParseInLocation("2006-01-02 15:04:05", in.At, time.UTC)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, in.At); err != nil {
				http.Error(w, "at: want YYYY-MM-DD HH:MM:SS or RFC 3339", http.StatusBadRequest)
				return
			}
		}
		at = t
	}
	writeJSON(w, http.StatusOK, map[string]int{"touched": s.Touch(in.IDs, at)})
}

func (s *Server) adminGenerate(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Seed  uint64    `json:"seed"`
		N     int       `json:"n"`
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
		Types []string  `json:"types"`
	}
	if !adminDecode(w, r, &in) {
		return
	}
	if in.N < 0 || in.N > 10_000_000 {
		http.Error(w, "n: want 0 to 10000000", http.StatusBadRequest)
		return
	}
	inds := Generate(GenerateOptions{Seed: in.Seed, N: in.N, Start: in.Start, End: in.End, Types: in.Types})
	if err := s.Load(inds); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"loaded": len(inds), "total": s.Len()})
}

func (s *Server) adminReject(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Substr string `json:"substr"`
	}
	if !adminDecode(w, r, &in) {
		return
	}
	s.RejectValue(in.Substr)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminSearch(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name     string          `json:"name"`
		APIQuery json.RawMessage `json:"api_query"`
	}
	if !adminDecode(w, r, &in) {
		return
	}
	id, err := s.AddSavedSearch(in.Name, in.APIQuery)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"id": id})
}

func (s *Server) adminExpire(w http.ResponseWriter, _ *http.Request) {
	s.ExpireTokens()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminIndicator(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "id: want an integer", http.StatusBadRequest)
		return
	}
	in, ok := s.Indicator(id)
	if !ok {
		http.Error(w, "no such indicator", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

func (s *Server) adminSignatures(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Signatures())
}

func (s *Server) adminInfo(w http.ResponseWriter, _ *http.Request) {
	s.mu.RLock()
	n, sigs := len(s.inds), len(s.sigOrder)
	s.mu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"indicators": n, "signatures": sigs, "tokens_issued": s.TokensIssued(),
		"id_shift": s.opts.IDShift,
	})
}
