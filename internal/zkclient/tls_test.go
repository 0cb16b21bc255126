package zkclient

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
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// tlsServer starts a standalone ZooKeeper serving TLS on a secure client
// port (Netty), with a fresh self-signed certificate for 127.0.0.1, and
// stops it when t ends. It returns the secure address and the certificate.
func tlsServer(t *testing.T) (string, *x509.Certificate) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is needed to make the server's PKCS12 keystore: %v", err)
	}
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "zk-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := filepath.Join(dir, "cert.pem")
	keyPEM := filepath.Join(dir, "key.pem")
	ks := filepath.Join(dir, "keystore.p12")
	os.WriteFile(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	if out, err := exec.Command("openssl", "pkcs12", "-export", "-in", certPEM, "-inkey", keyPEM,
		"-out", ks, "-passout", "pass:secret", "-name", "zk").CombinedOutput(); err != nil {
		t.Fatalf("openssl pkcs12: %v\n%s", err, out)
	}

	ports := freePortsT(t, 2)
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o755)
	cfg := fmt.Sprintf(`tickTime=100
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
secureClientPort=%d
secureClientPortAddress=127.0.0.1
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
ssl.keyStore.location=%s
ssl.keyStore.password=secret
ssl.keyStore.type=PKCS12
ssl.clientAuth=none
admin.enableServer=false
4lw.commands.whitelist=*
minSessionTimeout=200
maxSessionTimeout=60000
forceSync=no
`, data, ports[0], ports[1], ks)
	cfgPath := filepath.Join(dir, "zoo.cfg")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	cp, err := zktest.Classpath()
	if err != nil {
		t.Fatal(err)
	}
	// Debian's zookeeper.jar manifest omits netty-codec, which Netty's TLS
	// pipeline needs (and netty-resolver, which netty-transport needs).
	for _, jar := range []string{"/usr/share/java/netty-codec.jar", "/usr/share/java/netty-resolver.jar"} {
		if _, err := os.Stat(jar); err == nil {
			cp += string(os.PathListSeparator) + jar
		}
	}
	log, err := os.Create(filepath.Join(dir, "zookeeper.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		"-cp", cp, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfgPath)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		log.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "zookeeper.log"))
			t.Logf("TLS ZooKeeper log:\n%s", b)
		}
	})
	plain := fmt.Sprintf("127.0.0.1:%d", ports[0])
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for !serving(plain) {
		select {
		case <-tick.C:
		case <-exited:
			t.Fatal("TLS ZooKeeper exited while starting")
		case <-deadline:
			t.Fatal("TLS ZooKeeper not serving within 30s")
		}
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[1]), cert
}

// serving reports whether addr's srvr answer has a Mode.
func serving(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	io.WriteString(c, "srvr")
	b, _ := io.ReadAll(c)
	return strings.Contains(string(b), "Mode: ")
}

func freePortsT(t *testing.T, n int) []int {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func TestTLS(t *testing.T) {
	addr, cert := tlsServer(t)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	c, _ := connectT(t, "", Config{Servers: []string{addr}, TLS: &tls.Config{RootCAs: pool}})
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
