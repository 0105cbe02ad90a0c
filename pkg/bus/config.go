package bus

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tqflow/tqflow/pkg/config"
)

// Config says where NATS is and how the streams are sized. Fields carry
// caarlos0/env tags; services nest it under the NATS_ prefix.
type Config struct {
	// URL is a NATS server URL, or a comma-separated list of a cluster's.
	// Empty means an embedded server (single-host installs).
	URL string `env:"URL"`
	// Name is the connection name shown by the server.
	Name string `env:"NAME"`
	// CredsFile is a NATS credentials file (a user JWT and its nkey seed),
	// for servers run in operator mode.
	CredsFile string `env:"CREDS_FILE"`
	// User and Password authenticate with a user name and password
	// (NATS_PASSWORD_FILE reads the password from a file).
	User     string        `env:"USER"`
	Password config.Secret `env:"PASSWORD"`
	// Token authenticates with a token (NATS_TOKEN_FILE reads it from a
	// file).
	Token config.Secret `env:"TOKEN"`
	// NKeySeedFile is a file holding a user nkey seed (SU...), to
	// authenticate with an nkey.
	NKeySeedFile string `env:"NKEY_SEED_FILE"`
	// TLSCA is a PEM file of the CAs that signed the server's certificate;
	// the system's roots when empty.
	TLSCA string `env:"TLS_CA"`
	// TLSCert and TLSKey are a client certificate and its key (PEM), for
	// servers that verify clients.
	TLSCert string `env:"TLS_CERT"`
	TLSKey  string `env:"TLS_KEY"`
	// InboxPrefix replaces "_INBOX" in the connection's reply subjects,
	// so that a NATS user may be allowed to subscribe to its own replies
	// only (deploy/nats/users.conf), not to every user's.
	InboxPrefix string `env:"INBOX_PREFIX"`
	// ConnectWait bounds how long [Connect] waits for a server that is not
	// up yet; 2 minutes when zero. Not a variable: the local operator
	// commands shorten it.
	ConnectWait time.Duration `env:"-"`
	// Replicas is the number of replicas of every stream, bucket and
	// object store: 1 on a single server, 3 on a three-node cluster.
	Replicas int `env:"REPLICAS" envDefault:"1"`
	// MaxAge is how long streams keep messages, which bounds how far back a
	// replay can go.
	MaxAge time.Duration `env:"STREAM_MAX_AGE" envDefault:"720h"`
	// Duplicates is the deduplication window of the streams: a message
	// published again with the same ID within it is dropped by the server.
	// It must cover the fetcher's retry horizon.
	Duplicates time.Duration `env:"DUPLICATE_WINDOW" envDefault:"2h"`
	// MaxBytes caps each stream's size; -1 is no cap.
	MaxBytes int64 `env:"STREAM_MAX_BYTES" envDefault:"-1"`
	// CTRCacheTTL is how long the enrichers reuse a CTR answer (the CTR
	// cache bucket's TTL); DefaultCTRCacheTTL when zero. Every service
	// applies the topology, so every service must be given the same.
	CTRCacheTTL time.Duration `env:"CTR_CACHE_TTL" envDefault:"24h"`
}

// DefaultCTRCacheTTL is how long a CTR answer is reused when
// Config.CTRCacheTTL is zero.
const DefaultCTRCacheTTL = 24 * time.Hour

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("NATS_REPLICAS is %d: want 1, 3 or 5", c.Replicas))
	}
	if c.MaxAge <= 0 {
		errs = append(errs, fmt.Errorf("NATS_STREAM_MAX_AGE is %s: want a positive duration", c.MaxAge))
	}
	if c.Duplicates < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("NATS_DUPLICATE_WINDOW is %s: want at least 100ms", c.Duplicates))
	}
	if c.CTRCacheTTL < 0 || (c.CTRCacheTTL > 0 && c.CTRCacheTTL < time.Minute) {
		errs = append(errs, fmt.Errorf("NATS_CTR_CACHE_TTL is %s: want at least 1m", c.CTRCacheTTL))
	}
	if n := c.authMethods(); n > 1 {
		errs = append(errs, errors.New("NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED_FILE and NATS_CREDS_FILE: set one way of authenticating, not several"))
	}
	if (c.User == "") != (c.Password == "") {
		errs = append(errs, errors.New("NATS_USER and NATS_PASSWORD go together: set both or neither"))
	}
	if c.InboxPrefix != "" && (strings.ContainsAny(c.InboxPrefix, "*> \t") || strings.HasSuffix(c.InboxPrefix, ".") || strings.HasPrefix(c.InboxPrefix, ".")) {
		errs = append(errs, fmt.Errorf("NATS_INBOX_PREFIX %q: want subject tokens without wildcards (e.g. _INBOX_fetcher)", c.InboxPrefix))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("NATS_TLS_CERT and NATS_TLS_KEY go together: set both or neither"))
	}
	if c.MaxAge > 0 && c.Duplicates > c.MaxAge {
		errs = append(errs, fmt.Errorf("NATS_DUPLICATE_WINDOW (%s) is longer than NATS_STREAM_MAX_AGE (%s)", c.Duplicates, c.MaxAge))
	}
	return errors.Join(errs...)
}

// authMethods counts the ways of authenticating c sets.
func (c Config) authMethods() int {
	n := 0
	for _, set := range []bool{c.User != "" || c.Password != "", c.Token != "", c.NKeySeedFile != "", c.CredsFile != ""} {
		if set {
			n++
		}
	}
	return n
}

// HasAuth reports whether c authenticates in any way.
func (c Config) HasAuth() bool { return c.authMethods() > 0 }
