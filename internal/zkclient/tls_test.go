package zkclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

func TestTLS(t *testing.T) {
	zkc, err := zktest.Start(ctxT(t), zktest.Options{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := zkc.Close(); err != nil {
			t.Error(err)
		}
	})
	addr := zkc.SecureAddr(0)
	c, _ := connectT(t, "", Config{Servers: []string{addr}, TLS: zkc.TLSConfig()})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/tls", []byte("secure"), all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if data, _, err := c.Get(ctx, "/tls"); err != nil || string(data) != "secure" {
		t.Fatalf("Get over TLS = %q, %v", data, err)
	}

	// A server whose certificate we do not trust is refused.
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	bad, err := Connect(sctx, Config{Servers: []string{addr}, TLS: &tls.Config{RootCAs: x509.NewCertPool()}})
	if bad != nil || err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Connect with an untrusted certificate = %v, %v", bad, err)
	}
}
