package fabric

import (
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// DefaultListen is where the embedded server listens when ServerConfig.Listen
// is empty.
const DefaultListen = ":4222"

// MaxPayload is the largest message the embedded server accepts (a Task with a
// long prompt, a Chunk). nats-server's default of 1 MiB is too small for long
// contexts.
const MaxPayload = 8 << 20

// internalUser is the orchestrator's own NATS user on the embedded server. It
// contains an underscore, so no host id can collide with it.
const internalUser = "_orchestrator"

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// Listen is "host:port"; "" means DefaultListen (all interfaces, 4222);
	// port 0 picks a free port.
	Listen string
	// TLS, when set, makes the server require TLS from every client.
	TLS *tls.Config
	// VerifyHost decides whether a host may connect with this id and secret.
	// It is called on every host connect and reconnect, from the server's
	// connection goroutine, so it should answer quickly. Nil refuses all hosts.
	VerifyHost func(hostID, secret string) bool
	// Log receives the server's notices and errors; nil discards them.
	Log *slog.Logger
}

// Server is the orchestrator's embedded NATS server with per-host
// credentials and permissions.
type Server struct {
	ns       *server.Server
	password string
	url      string
	tls      *tls.Config
	log      *slog.Logger
	wg       sync.WaitGroup // kicks in progress
}

// StartServer starts the embedded server and waits until it accepts
// connections.
func StartServer(cfg ServerConfig) (*Server, error) {
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("nats listen address %q: bad port", listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if port > 0 {
		// nats-server reports a busy port only in its log and then never
		// becomes ready; probe first for a clear, immediate error.
		ln, err := net.Listen("tcp", net.JoinHostPort(host, portStr))
		if err != nil {
			return nil, fmt.Errorf("nats listen: %w", err)
		}
		ln.Close()
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	password := NewSecret()
	auth := &authenticator{password: password, verify: cfg.VerifyHost, log: log}
	opts := &server.Options{
		ServerName:                 "peerllm",
		Host:                       host,
		Port:                       port,
		NoSigs:                     true,
		MaxPayload:                 MaxPayload,
		PingInterval:               20 * time.Second,
		MaxPingsOut:                3,
		AuthTimeout:                5,
		CustomClientAuthentication: auth,
	}
	if cfg.TLS != nil {
		opts.TLS = true
		opts.TLSConfig = cfg.TLS
		opts.TLSTimeout = 5
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	ns.SetLoggerV2(slogAdapter{log}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("nats server on %s: not ready", listen)
	}
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("nats server: no listener address")
	}
	dialHost := host
	if ip := net.ParseIP(host); host == "0.0.0.0" || host == "::" || (ip != nil && ip.IsUnspecified()) {
		dialHost = "127.0.0.1"
	}
	scheme := "nats"
	if cfg.TLS != nil {
		scheme = "tls"
	}
	srv := &Server{
		ns:       ns,
		password: password,
		url:      scheme + "://" + net.JoinHostPort(dialHost, strconv.Itoa(addr.Port)),
		tls:      cfg.TLS,
		log:      log,
	}
	auth.mu.Lock()
	auth.kick = srv.kick
	auth.mu.Unlock()
	return srv, nil
}

// kick closes a host's superseded connection. It runs outside the
// authentication callback (which the server calls with its own state in
// flux) and Close waits for it.
func (s *Server) kick(hostID string, connID uint64) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.ns.DisconnectClientByID(connID); err == nil {
			s.log.Warn("host connected again; closed its previous connection", "host", hostID)
		}
	}()
}

// URL is the address hosts dial, e.g. nats://127.0.0.1:4222. When the server
// listens on all interfaces it names the loopback address; remote hosts use
// the machine's public name with the same port.
func (s *Server) URL() string { return s.url }

// Port is the TCP port the server listens on.
func (s *Server) Port() int { return s.ns.Addr().(*net.TCPAddr).Port }

// Connect opens a privileged connection for the orchestrator (publish and
// subscribe anywhere). name shows up in server diagnostics. The connection is
// closed by Close at the latest.
//
// It dials the server's own address over loopback TCP, like any client:
// nats-server's in-process connection is a synchronous net.Pipe, which
// streamed tokens 1.35x slower in BenchmarkStream (internal/agent; see
// docs/HOSTLINK.md). With TLS it pins the server's own certificate; only when
// that is not available (a GetCertificate callback) does it fall back to the
// in-process connection.
func (s *Server) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{
		nats.Name(name),
		nats.UserInfo(internalUser, s.password),
		nats.MaxReconnects(-1),
	}
	url := s.url
	switch {
	case s.tls == nil:
	case len(s.tls.Certificates) > 0 && len(s.tls.Certificates[0].Certificate) > 0:
		base = append(base, nats.Secure(pinnedTLS(s.tls.Certificates[0].Certificate[0])))
	default:
		url = ""
		base = append(base, nats.InProcessServer(s.ns))
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	return nc, nil
}

// NumHosts is how many host connections are open (not counting the
// orchestrator's own).
func (s *Server) NumHosts() int {
	conns, err := s.ns.Connz(&server.ConnzOptions{Username: true, Limit: 1 << 20})
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range conns.Conns {
		if c.AuthorizedUser != internalUser {
			n++
		}
	}
	return n
}

// Close shuts the server down, closing every connection, and waits for it.
func (s *Server) Close() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.wg.Wait()
}

// authenticator decides permissions at connect time: the orchestrator's
// internal user gets everything; a host gets HostPermissions of its own id
// when VerifyHost accepts its secret.
type authenticator struct {
	password string
	verify   func(hostID, secret string) bool
	log      *slog.Logger

	mu     sync.Mutex
	latest map[string]uint64 // host id → its newest connection's id
	kick   func(hostID string, connID uint64)
}

// onlyNewest lets one connection per host id live: the newest. A host that
// reconnects after a network blip may still have a stale connection on the
// server (until pings time it out), and a host id run twice by mistake would
// otherwise receive every task twice and interleave two streams under one
// task. It reports false for a connection older than one already admitted.
func (a *authenticator) onlyNewest(c server.ClientAuthentication, hostID string) bool {
	idc, ok := c.(interface{ GetID() uint64 })
	if !ok {
		return true
	}
	cid := idc.GetID()
	a.mu.Lock()
	old, had := a.latest[hostID]
	if had && cid < old {
		a.mu.Unlock()
		return false
	}
	if a.latest == nil {
		a.latest = map[string]uint64{}
	}
	a.latest[hostID] = cid
	kick := a.kick
	a.mu.Unlock()
	if had && old != cid && kick != nil {
		kick(hostID, old)
	}
	return true
}

func (a *authenticator) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false
	}
	o := c.GetOpts()
	if o == nil {
		return false
	}
	user, pass := o.Username, o.Password
	if user == internalUser {
		if subtle.ConstantTimeCompare([]byte(pass), []byte(a.password)) != 1 {
			return false
		}
		c.RegisterUser(&server.User{Username: user})
		return true
	}
	if !ValidHostID(user) || pass == "" || a.verify == nil || !a.verify(user, pass) {
		a.log.Info("host refused", "host", user, "remote", addrString(c.RemoteAddress()))
		return false
	}
	if !a.onlyNewest(c, user) {
		return false
	}
	c.RegisterUser(&server.User{Username: user, Permissions: HostPermissions(user)})
	return true
}

// pinnedTLS trusts exactly one certificate (the server's own, DER): the
// orchestrator dials itself, so no CA or host name is involved.
func pinnedTLS(der []byte) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], der) {
				return errors.New("nats server certificate is not the embedded server's own")
			}
			return nil
		},
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// slogAdapter routes nats-server's logger to slog. Debug and trace are off,
// and the server never logs payloads at the levels kept.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  {}
func (a slogAdapter) Tracef(format string, v ...any)  {}
