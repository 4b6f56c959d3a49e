package fabric_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/peerllm/peerllm/internal/fabric"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "peerllm test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	var book hostBook
	secret := book.add("host-a")
	for _, tc := range []struct {
		name string
		conf *tls.Config
	}{
		{"static certificate", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}},
		{"certificate callback", &tls.Config{MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := fabric.StartServer(fabric.ServerConfig{Listen: "127.0.0.1:0", TLS: tc.conf, VerifyHost: book.verify})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if !strings.HasPrefix(s.URL(), "tls://") {
				t.Fatalf("URL %s", s.URL())
			}
			orch, err := s.Connect("orchestrator")
			if err != nil {
				t.Fatal(err)
			}
			defer orch.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// A host that does not trust the certificate cannot connect.
			if nc, err := fabric.ConnectHost(ctx, s.URL(), "host-a", secret, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}), nats.Timeout(2*time.Second)); err == nil {
				nc.Close()
				t.Fatal("host connected without trusting the certificate")
			} else if ctx.Err() != nil {
				t.Fatal("untrusted certificate retried until the deadline")
			}
			a, aErrs := connectHost(t, s.URL(), "host-a", secret, nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
			if !a.TLSRequired() {
				t.Fatal("host connection is not TLS")
			}
			checkIsolation(t, orch, a, aErrs)
		})
	}
}
