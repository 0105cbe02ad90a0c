// Package sandbox starts every simulator tqflow talks to (ThreatQ, CTR,
// MISP, the ET rules server), each on its own loopback port, with a
// generated dataset: indicators in ThreatQ and a saved search over them,
// CTR context for a share of them, and an ET ruleset. tqflow sandbox serves
// it, tqflow demo runs the pipeline against it, and the end-to-end tests and
// benchmarks use it.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/sim/etsim"
	"github.com/tqflow/tqflow/pkg/sim/mispsim"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
)

// Credentials the sandbox accepts.
const (
	MISPKey     = "SANDBOXsandboxSANDBOXsandboxSANDBOXsandb"
	Oinkcode    = "sandboxoinkcode0123"
	SavedSearch = "CTR Enrichment"
	Flavor      = "suricata-5.0"
)

// Options configures [Start].
type Options struct {
	// Seed makes the dataset and the simulators' faults repeatable.
	Seed uint64
	// Indicators is how many indicators ThreatQ holds.
	Indicators int
	// ContextShare is the share (0 to 1) of indicators of a type CTR
	// supports that CTR has context for.
	ContextShare float64
	// Start and End bound the indicators' updated_at; the 30 days before now
	// when zero.
	Start, End time.Time
	// Rules is how many rules the generated ET ruleset holds; 0 for none.
	Rules int
	// Host is where the simulators listen; 127.0.0.1 when empty.
	Host string
	// BasePort, when not zero, puts ThreatQ on it, CTR on +1, MISP on +2
	// and ET on +3; zero picks free ports.
	BasePort int
	// CTRModuleErrors is the share of CTR module answers replaced by a
	// per-module error inside the 200, as relay modules report their
	// upstream's limits every day (ctr.md, corrections 4):
	// DefaultModuleErrorRate when zero, none when negative.
	CTRModuleErrors float64
	// CTRRateLimit and CTRRateWindow are the org's CTR rate limit; none
	// when CTRRateLimit is zero (the default: tests measure pacing with
	// Requests, not by being refused).
	CTRRateLimit  int
	CTRRateWindow time.Duration
	// ThreatQNow is the ThreatQ simulator's clock (the updated_at it
	// stamps, its tokens' lives) and the default End's; time.Now when nil.
	// A test that gives the fetcher the same clock moves both past a
	// second instead of waiting for the wall clock to.
	ThreatQNow func() time.Time
}

// DefaultModuleErrorRate is the share of CTR module answers that are
// per-module errors in the default dataset.
const DefaultModuleErrorRate = 0.05

// ctrTypes maps ThreatQ indicator types to CTIM observable types, as the
// contract's table says (ctr.md §5): the sandbox decides from it which
// indicators CTR knows, without the client's own table. Types absent here
// (CIDR Block, ASN, SHA-384, String, …) have no CTR counterpart.
var ctrTypes = map[string]string{
	"IP Address": "ip", "IPv6 Address": "ipv6", "FQDN": "domain", "Domain": "domain", "URL": "url",
	"SHA-256": "sha256", "SHA-1": "sha1", "MD5": "md5", "Email Address": "email",
	"Email Subject": "email_subject", "Filename": "file_name", "File Path": "file_path",
	"Mutex": "mutex", "Registry Key": "registry_key", "User-agent": "user_agent",
	"MAC Address": "mac_address", "Username": "user", "Hostname": "hostname",
}

// CTRType returns the CTIM observable type CTR knows a ThreatQ indicator
// type by (exact ThreatQ names, ctr.md §5), and false for one it has none
// for.
func CTRType(threatqType string) (string, bool) {
	t, ok := ctrTypes[threatqType]
	return t, ok
}

// Sandbox is the running simulators.
type Sandbox struct {
	ThreatQ *tqsim.Server
	CTR     *ctrsim.Server
	MISP    *mispsim.Server
	ET      *etsim.Server

	// URLs of each simulator.
	ThreatQURL, CTRURL, MISPURL, ETURL string

	// Dataset is what was loaded.
	Dataset Dataset

	servers []*http.Server
}

// Dataset is the generated data.
type Dataset struct {
	Indicators []tqsim.Indicator
	// WithContext is the IDs of indicators CTR has context for.
	WithContext map[int64]bool
	// Seed is what GenerateContext was called with.
	Seed uint64
}

// HasContext reports whether CTR should know value: a deterministic share
// of values, by hash, so tests and the demo agree without sharing state.
func HasContext(value string, share float64) bool {
	h := fnv.New64a()
	_, _ = h.Write([]byte(value))
	return float64(h.Sum64()%10000) < share*10000
}

// Start starts the simulators and loads the dataset.
func Start(o Options) (*Sandbox, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.ThreatQNow == nil {
		o.ThreatQNow = time.Now
	}
	if o.End.IsZero() {
		o.End = o.ThreatQNow().UTC().Add(-time.Minute)
	}
	if o.Start.IsZero() {
		o.Start = o.End.Add(-30 * 24 * time.Hour)
	}
	s := &Sandbox{
		ThreatQ: tqsim.New(tqsim.Options{Seed: o.Seed, Now: o.ThreatQNow}),
		CTR:     ctrsim.New(ctrOptions(o)),
		MISP:    mispsim.New(mispsim.Options{Seed: o.Seed, Keys: []string{MISPKey}}),
		ET:      etsim.New(etsim.Options{Seed: o.Seed, Oinkcode: Oinkcode}),
	}
	s.Dataset = Dataset{Seed: o.Seed, WithContext: map[int64]bool{}}
	if o.Indicators > 0 {
		inds := tqsim.Generate(tqsim.GenerateOptions{Seed: o.Seed, N: o.Indicators, Start: o.Start, End: o.End})
		for i := range inds {
			inds[i].ID = int64(i + 1) // Known IDs, so tests can name indicators.
		}
		if err := s.ThreatQ.Load(inds); err != nil {
			return nil, fmt.Errorf("start sandbox: %w", err)
		}
		for _, in := range inds {
			t, ok := CTRType(in.Type)
			if !ok || !HasContext(in.Value, o.ContextShare) {
				continue
			}
			obs := ctrsim.Observable{Type: t, Value: in.Value}
			s.CTR.AddContext(obs, ctrsim.GenerateContext(o.Seed, obs)...)
			s.Dataset.WithContext[in.ID] = true
		}
		s.Dataset.Indicators = inds
	}
	// The saved search selects every indicator of the dataset, as a broad
	// Data Collection would.
	if _, err := s.ThreatQ.AddSavedSearch(SavedSearch, json.RawMessage(`{"criteria":{},"filters":{}}`)); err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	if o.Rules > 0 {
		tarball, err := GenerateRuleset(o.Seed, o.Rules, 0)
		if err != nil {
			return nil, err
		}
		for _, src := range []string{"open", "pro"} {
			if err := s.ET.Put(src, Flavor, tarball); err != nil {
				return nil, fmt.Errorf("start sandbox: %w", err)
			}
		}
	}
	handlers := []http.Handler{s.ThreatQ.Handler(), s.CTR.Handler(), s.MISP.Handler(), s.ET.Handler()}
	urls := []*string{&s.ThreatQURL, &s.CTRURL, &s.MISPURL, &s.ETURL}
	for i, h := range handlers {
		port := 0
		if o.BasePort != 0 {
			port = o.BasePort + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(o.Host, strconv.Itoa(port)))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("start sandbox: %w", err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		s.servers = append(s.servers, srv)
		*urls[i] = "http://" + ln.Addr().String()
		go func() { _ = srv.Serve(ln) }()
	}
	return s, nil
}

func ctrOptions(o Options) ctrsim.Options {
	co := ctrsim.Options{Seed: o.Seed, RateLimit: -1, ModuleErrorRate: o.CTRModuleErrors}
	switch {
	case o.CTRModuleErrors == 0:
		co.ModuleErrorRate = DefaultModuleErrorRate
	case o.CTRModuleErrors < 0:
		co.ModuleErrorRate = 0
	}
	if o.CTRRateLimit > 0 {
		co.RateLimit, co.RateWindow = o.CTRRateLimit, o.CTRRateWindow
	}
	return co
}

// Env returns the variables that point tqflow at the sandbox.
func (s *Sandbox) Env() map[string]string {
	return map[string]string{
		"THREATQ_URL":         s.ThreatQURL,
		"THREATQ_ALLOW_HTTP":  "true",
		"THREATQ_EMAIL":       tqsim.DefaultUser.Email,
		"THREATQ_PASSWORD":    tqsim.DefaultUser.Password,
		"THREATQ_CLIENT_ID":   tqsim.DefaultUser.ClientID,
		"CTR_SAVED_SEARCH":    SavedSearch,
		"CTR_BASE_URL":        s.CTRURL,
		"CTR_CLIENT_ID":       ctrsim.DefaultClientID,
		"CTR_CLIENT_PASSWORD": ctrsim.DefaultClientPassword,
		"MISP_URL":            s.MISPURL,
		"MISP_KEY":            MISPKey,
		"ET_OPEN_URL":         s.ETURL,
		"ET_PRO_URL":          s.ETURL,
		"ET_BLOCK_URL":        s.ETURL,
		"ET_FLAVOR":           Flavor,
	}
}

// Close stops the simulators.
func (s *Sandbox) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	_ = errors.Join(errs...)
}
