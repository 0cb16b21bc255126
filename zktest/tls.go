package zktest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// serverTLS is what a cluster started with Options.TLS serves TLS with: a
// self-signed certificate for 127.0.0.1 and localhost, and the PEM file
// (certificate and key) that ZooKeeper reads as its keystore.
type serverTLS struct {
	cert     *x509.Certificate
	keystore string
}

// newServerTLS makes a fresh key and certificate, valid for a day, and
// writes them to dir/tls.pem.
func newServerTLS(dir string) (*serverTLS, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "zktest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	pemBytes := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	keystore := filepath.Join(dir, "tls.pem")
	if err := os.WriteFile(keystore, pemBytes, 0o600); err != nil {
		return nil, err
	}
	return &serverTLS{cert: cert, keystore: keystore}, nil
}

// config returns zoo.cfg lines that serve TLS on port with Netty, the
// only connection factory that speaks TLS.
func (t *serverTLS) config(port int) string {
	return fmt.Sprintf("secureClientPort=%d\nsecureClientPortAddress=127.0.0.1\n"+
		"serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"+
		"ssl.keyStore.location=%s\nssl.keyStore.type=PEM\nssl.clientAuth=none\n", port, t.keystore)
}

// nettyJars are added to Debian's classpath for TLS: zookeeper.jar's
// manifest omits netty-codec, which Netty's TLS pipeline needs, and
// netty-resolver, which netty-transport needs.
var nettyJars = []string{"/usr/share/java/netty-codec.jar", "/usr/share/java/netty-resolver.jar"}

func withNetty(classpath string) string {
	for _, jar := range nettyJars {
		if _, err := os.Stat(jar); err == nil && !strings.Contains(classpath, jar) {
			classpath += string(os.PathListSeparator) + jar
		}
	}
	return classpath
}

// SecureAddr returns the TLS client address of server i, "127.0.0.1:port",
// of a cluster started with Options.TLS. It panics if the cluster serves no
// TLS or i is out of range, like an index.
func (c *Cluster) SecureAddr(i int) string {
	if c.tls == nil {
		panic("zktest: SecureAddr on a cluster started without Options.TLS")
	}
	return c.servers[i].secureAddr()
}

func (s *server) secureAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.securePort))
}

// accepts reports whether addr accepts a TCP connection.
func accepts(ctx context.Context, addr string) error {
	conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// TLSConfig returns a new client configuration that trusts the certificate
// of a cluster started with Options.TLS, and nothing else; nil if the
// cluster serves no TLS. The certificate names 127.0.0.1 and localhost.
func (c *Cluster) TLSConfig() *tls.Config {
	if c.tls == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.tls.cert)
	return &tls.Config{RootCAs: pool}
}
