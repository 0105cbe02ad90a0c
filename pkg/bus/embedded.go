package bus

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// EmbeddedConfig configures an in-process NATS server with JetStream, for
// single-host installs and tests.
type EmbeddedConfig struct {
	// StoreDir is where JetStream keeps its data. Required: an empty store
	// directory would make the server use a temporary one and lose data on
	// reboot.
	StoreDir string
	// Host and Port are where the server listens for other processes
	// (workers in other containers, the nats CLI). Port 0 means it does not
	// listen at all and only in-process connections reach it; -1 picks a
	// free port.
	Host string
	Port int
	// MaxMemory and MaxStore cap JetStream's memory and disk use; zero
	// means 256 MiB and 10 GiB.
	MaxMemory int64
	MaxStore  int64
	// ServerName names the server; "tqflow" when empty.
	ServerName string
	// SyncAlways fsyncs every write, trading latency for durability on power
	// loss.
	SyncAlways bool
	// Auth is who may connect, in process or over the network. Empty: anyone
	// (tests only; tqflow run always sets it).
	Auth EmbeddedAuth
}

// EmbeddedAuth is the one identity an embedded server accepts: a user and
// password, a token, or an nkey. Every connection, in-process ones
// included, must present it.
type EmbeddedAuth struct {
	User     string
	Password string
	Token    string
	// NKey is a user's public nkey (U...); connections sign with its seed.
	NKey string
}

func (a EmbeddedAuth) set() bool { return a.User != "" || a.Token != "" || a.NKey != "" }

// Embedded is a running in-process NATS server.
type Embedded struct {
	srv  *server.Server
	auth EmbeddedAuth
}

// StartEmbedded starts a NATS server with JetStream in this process and
// waits until it accepts connections. The server installs no signal
// handlers: shutting it down is the caller's, through [Embedded.Shutdown].
func StartEmbedded(c EmbeddedConfig, log *slog.Logger) (*Embedded, error) {
	if c.StoreDir == "" {
		return nil, errors.New("start embedded NATS: no store directory")
	}
	if c.MaxMemory == 0 {
		c.MaxMemory = 256 << 20
	}
	if c.MaxStore == 0 {
		c.MaxStore = 10 << 30
	}
	if c.ServerName == "" {
		c.ServerName = "tqflow"
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	opts := &server.Options{
		ServerName:         c.ServerName,
		JetStream:          true,
		StoreDir:           c.StoreDir,
		JetStreamMaxMemory: c.MaxMemory,
		JetStreamMaxStore:  c.MaxStore,
		NoSigs:             true,
		Host:               c.Host,
		Port:               c.Port,
		DontListen:         c.Port == 0,
		SyncAlways:         c.SyncAlways,
		NoLog:              log == nil,
	}
	switch a := c.Auth; {
	case a.User != "":
		opts.Users = []*server.User{{Username: a.User, Password: a.Password}}
	case a.Token != "":
		opts.Authorization = a.Token
	case a.NKey != "":
		opts.Nkeys = []*server.NkeyUser{{Nkey: a.NKey}}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded NATS: %w", err)
	}
	if log != nil {
		srv.SetLoggerV2(&serverLog{log.With("component", "nats-server")}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("start embedded NATS: not ready after 30s")
	}
	return &Embedded{srv: srv, auth: c.Auth}, nil
}

// Connect returns an in-process connection to the server, authenticated
// as [EmbeddedConfig.Auth] says; an nkey server needs [Embedded.ConnectAs].
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.InProcessServer(e.srv), nats.Name(name), nats.MaxReconnects(-1), nats.DrainTimeout(ConnDrainTimeout), nats.SyncQueueLen(syncQueueLen)}
	switch {
	case e.auth.User != "":
		opts = append(opts, nats.UserInfo(e.auth.User, e.auth.Password))
	case e.auth.Token != "":
		opts = append(opts, nats.Token(e.auth.Token))
	}
	return e.connect(opts)
}

// ConnectAs returns an in-process connection with c's credentials (an
// nkey seed file among them).
func (e *Embedded) ConnectAs(c Config) (*nats.Conn, error) {
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	return e.connect(append(opts, nats.InProcessServer(e.srv), nats.MaxReconnects(-1)))
}

func (e *Embedded) connect(opts []nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to embedded NATS: %w", err)
	}
	return nc, nil
}

// ClientURL returns the URL other processes connect to, or "" when the
// server does not listen.
func (e *Embedded) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Server returns the underlying server.
func (e *Embedded) Server() *server.Server { return e.srv }

// Shutdown stops the server and waits until it has stopped, so that its
// store is consistent on disk.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// serverLog adapts slog to the server's logger.
type serverLog struct{ log *slog.Logger }

func (l *serverLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLog) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

// AuthFor returns the identity an embedded server accepts for c's
// credentials: its user and password, its token, or the public key of its
// nkey seed. It refuses a creds file, which only a server in operator mode
// understands.
func AuthFor(c Config) (EmbeddedAuth, error) {
	switch {
	case c.User != "":
		return EmbeddedAuth{User: c.User, Password: c.Password.Reveal()}, nil
	case c.Token != "":
		return EmbeddedAuth{Token: c.Token.Reveal()}, nil
	case c.NKeySeedFile != "":
		seed, err := os.ReadFile(c.NKeySeedFile)
		if err != nil {
			return EmbeddedAuth{}, fmt.Errorf("NATS_NKEY_SEED_FILE: read nkey seed: %w", err)
		}
		kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
		if err != nil {
			return EmbeddedAuth{}, fmt.Errorf("NATS_NKEY_SEED_FILE %s: %w", c.NKeySeedFile, err)
		}
		defer kp.Wipe()
		pub, err := kp.PublicKey()
		if err != nil {
			return EmbeddedAuth{}, fmt.Errorf("NATS_NKEY_SEED_FILE %s: %w", c.NKeySeedFile, err)
		}
		return EmbeddedAuth{NKey: pub}, nil
	case c.CredsFile != "":
		return EmbeddedAuth{}, errors.New("NATS_CREDS_FILE is for a NATS server in operator mode; the embedded server takes NATS_USER/NATS_PASSWORD, NATS_TOKEN or NATS_NKEY_SEED_FILE")
	}
	return EmbeddedAuth{}, nil
}
