package lighthouse

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

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// tlsCluster starts a standalone server of t's own that also serves TLS on a
// secure client port, and closes it when t ends.
func tlsCluster(t *testing.T) *zktest.Cluster {
	t.Helper()
	c, err := zktest.Start(testCtx(t), zktest.Options{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// Over TLS a session reads and writes nodes and runs a recipe, and what it
// writes is what the server holds (read back over the plain port).
func TestTLS(t *testing.T) {
	zkc := tlsCluster(t)
	root := zkc.Root(t)
	sess := connect(t, zkc.SecureAddr(0)+zktest.Chroot(root), WithTLS(zkc.TLSConfig()))
	ctx := testCtx(t)

	if _, err := sess.Create(ctx, "/tls", []byte("secure"), Persistent); err != nil {
		t.Fatal(err)
	}
	if data, _, err := sess.Get(ctx, "/tls"); err != nil || string(data) != "secure" {
		t.Fatalf("Get over TLS = %q, %v; want \"secure\"", data, err)
	}
	plain := connect(t, root)
	if data, _, err := plain.Get(ctx, "/tls"); err != nil || string(data) != "secure" {
		t.Fatalf("Get over the plain port = %q, %v; want \"secure\"", data, err)
	}

	electCtx, resign := context.WithCancel(ctx)
	ch, err := sess.Elect(electCtx, "/leader", WithID("tls"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for leading := false; !leading; {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatal("Elect's channel closed before leading")
			}
			if leading = l.IsLeader; leading && (l.ID != "tls" || l.Token == 0) {
				t.Fatalf("leadership over TLS = %+v; want ID tls and a token", l)
			}
		case <-deadline:
			t.Fatal("no leadership over TLS within 10s")
		}
	}
	resign()
	// Elect closes its channel once it has deleted its node.
	for closed := false; !closed; {
		select {
		case _, ok := <-ch:
			closed = !ok
		case <-deadline:
			t.Fatal("Elect's channel still open 10s after resigning")
		}
	}
	if kids, err := plain.Children(ctx, "/leader"); err != nil || len(kids) != 0 {
		t.Fatalf("election nodes after resigning = %v, %v; want none", kids, err)
	}
}

// A server whose certificate the client does not trust is never used: Connect
// fails when its ctx ends, saying why.
func TestTLSUntrustedServer(t *testing.T) {
	zkc := tlsCluster(t)
	other := x509.NewCertPool()
	other.AddCert(selfSigned(t))
	trusted := zkc.TLSConfig()
	trusted.ServerName = "zk.example.com"
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"another CA", &tls.Config{RootCAs: other}, "certificate signed by unknown authority"},
		{"no CA", &tls.Config{RootCAs: x509.NewCertPool()}, "certificate signed by unknown authority"},
		{"wrong name", trusted, "not zk.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const wait = 2 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			start := time.Now()
			sess, err := Connect(ctx, zkc.SecureAddr(0), WithTLS(tc.cfg), WithSessionTimeout(time.Second))
			took := time.Since(start)
			if sess != nil {
				sess.Close()
			}
			if sess != nil || err == nil {
				t.Fatalf("Connect = %v, %v; want an error", sess, err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "lighthouse:") != 1 {
				t.Errorf("Connect error = %q; want it to say %q, and \"lighthouse:\" once", err, tc.want)
			}
			t.Logf("Connect error: %v", err)
			if took > wait+time.Second {
				t.Errorf("Connect took %v with a ctx of %v", took, wait)
			}
		})
	}
}

// selfSigned returns a fresh self-signed certificate for 127.0.0.1, a CA
// that signed nothing the server has.
func selfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "other"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
