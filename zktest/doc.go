// Package zktest runs real ZooKeeper servers for tests, so that code which
// uses ZooKeeper can be tested against the real thing and its faults: a
// standalone server or an ensemble of JVMs on free loopback ports, servers
// that can be stopped, killed, paused and restarted, and a TCP proxy that
// cuts, stalls and delays connections, loses a reply, or expires a session
// on demand. It is lighthouse's own test kit, in the spirit of Curator's
// TestingServer and TestingCluster. It never mocks.
//
// # Quick start
//
// The tests of a package usually share one standalone server, started by
// the first test that asks for it, and each test works under a znode of its
// own:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Main(m)) }
//
//	func TestJob(t *testing.T) {
//		t.Parallel()
//		root := zktest.Shared(t).Root(t) // "127.0.0.1:port/TestJob-1"
//		sess, err := lighthouse.Connect(ctx, root)
//		...
//	}
//
// To inject faults between the code under test and the server, connect
// through a Proxy:
//
//	zk := zktest.Shared(t)
//	root := zk.Root(t)
//	proxy := zktest.ProxyT(t, zk.Addr(0))
//	sess, err := lighthouse.Connect(ctx, proxy.Addr()+zktest.Chroot(root))
//	...
//	proxy.Cut()  // the session loses its connection...
//	proxy.Heal() // ...and gets it back
//
// StartT starts servers of a test's own, for tests that stop, kill or pause
// them; Start and NewProxy do the same without a test, for programs such as
// demos.
//
// With Options{TLS: true} each server also serves TLS on a secure client
// port (SecureAddr), with a certificate made for the cluster that
// TLSConfig's client configuration trusts.
//
// # Requirements
//
// Servers need a Java runtime ($JAVA_HOME/bin/java or java on $PATH) and
// ZooKeeper's jars: from $ZOOKEEPER_HOME (an unpacked release) if set, else
// from Debian's zookeeper package (/usr/share/java/zookeeper.jar). Each
// server is a JVM with a heap of at most 256MB and takes a second or two to
// start. On Linux a server is killed when the process that started it dies.
//
// The package does not import testing: functions for tests take a TB, which
// *testing.T satisfies.
package zktest
