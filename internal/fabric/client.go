package fabric

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Backoff bounds for a host's dial and re-dial attempts.
const (
	BackoffBase = 250 * time.Millisecond
	BackoffMax  = 30 * time.Second
)

// ErrAuth means the NATS server refused the credentials. Retrying with the
// same ones is pointless.
var ErrAuth = errors.New("host credentials refused")

// ReconnectDelay is the wait before dial attempt number attempt (0-based):
// exponential from BackoffBase, capped at BackoffMax, with the upper half
// jittered so that many hosts cut off at once do not return in lock step.
func ReconnectDelay(attempt int) time.Duration {
	d := BackoffMax
	if attempt < 30 {
		if e := BackoffBase << attempt; e < BackoffMax {
			d = e
		}
	}
	return d/2 + rand.N(d/2+1)
}

// ConnectHost dials the orchestrator as host hostID. It retries the first
// connection with ReconnectDelay until ctx is done, except when the server
// refuses the credentials (an error wrapping ErrAuth) or its TLS certificate
// does not verify: retrying cannot fix either. Once connected, the
// connection reconnects forever by itself (capped backoff with jitter), also
// through refused credentials, since a once-valid host is more likely facing
// an orchestrator that cannot check them yet than a revoked secret. opts are
// applied after the defaults and may override them (handlers, TLS, name).
func ConnectHost(ctx context.Context, url, hostID, secret string, opts ...nats.Option) (*nats.Conn, error) {
	return ConnectHostNotify(ctx, url, hostID, secret, nil, opts...)
}

// ConnectHostNotify is ConnectHost that calls onRetry (if not nil) before
// each wait after a failed first dial, with the error and the wait, so a host
// whose orchestrator address is wrong or down says so instead of retrying
// in silence.
func ConnectHostNotify(ctx context.Context, url, hostID, secret string, onRetry func(err error, wait time.Duration), opts ...nats.Option) (*nats.Conn, error) {
	if !ValidHostID(hostID) {
		return nil, fmt.Errorf("host id %q: want 1-%d characters of a-z, 0-9 and '-'", hostID, MaxHostIDLen)
	}
	if secret == "" {
		return nil, errors.New("host secret is empty")
	}
	all := append([]nats.Option{
		nats.Name("peerllm-host-" + hostID),
		nats.UserInfo(hostID, secret),
		nats.CustomInboxPrefix(InboxPrefix(hostID)),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(ReconnectDelay),
		// A refusal on reconnect may be the orchestrator restarting with its
		// database not yet up; keep trying (at the capped backoff) instead of
		// nats.go's default of giving up after two identical auth errors.
		nats.IgnoreAuthErrorAbort(),
		nats.PingInterval(20 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.Timeout(10 * time.Second),
	}, opts...)
	for attempt := 0; ; attempt++ {
		nc, err := nats.Connect(url, all...)
		if err == nil {
			return nc, nil
		}
		if isAuthError(err) {
			return nil, fmt.Errorf("connect to %s as %s: %w", url, hostID, ErrAuth)
		}
		if isCertError(err) {
			return nil, fmt.Errorf("connect to %s: %w", url, err)
		}
		wait := ReconnectDelay(attempt)
		if onRetry != nil {
			onRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("connect to %s: %w (last error: %v)", url, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// ConnectExternal connects the orchestrator to an external NATS server or
// cluster (the scale-out path: several orchestrator replicas share one
// fabric). user must have full publish and subscribe rights there; hosts are
// configured on that server with HostUser. url may list several servers,
// comma-separated.
func ConnectExternal(url, user, password string, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{
		nats.Name("peerllm-orchestrator"),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(ReconnectDelay),
		nats.RetryOnFailedConnect(false),
	}, opts...)
	if user != "" {
		all = append([]nats.Option{nats.UserInfo(user, password)}, all...)
	}
	nc, err := nats.Connect(url, all...)
	if err != nil {
		if isAuthError(err) {
			return nil, fmt.Errorf("connect to %s: %w", url, ErrAuth)
		}
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	return nc, nil
}

func isCertError(err error) bool {
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var cerr x509.CertificateInvalidError
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr)
}

func isAuthError(err error) bool {
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
		return true
	}
	return strings.Contains(strings.ToLower(err.Error()), "authorization violation")
}
