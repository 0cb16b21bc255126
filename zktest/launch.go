package zktest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// launch configures and starts n servers and waits until they serve.
func (c *Cluster) launch(ctx context.Context, n int) error {
	per := 3 // client, quorum, election
	if c.tls != nil {
		per++ // secure client
	}
	ports, err := pickPorts(per * n)
	if err != nil {
		return fmt.Errorf("zktest: free ports: %w", err)
	}
	c.servers = make([]*server, n)
	for i := range c.servers {
		c.servers[i] = &server{
			id:           i + 1,
			dir:          filepath.Join(c.dir, "server"+strconv.Itoa(i+1)),
			clientPort:   ports[per*i],
			quorumPort:   ports[per*i+1],
			electionPort: ports[per*i+2],
		}
		if c.tls != nil {
			c.servers[i].securePort = ports[per*i+3]
		}
	}
	for _, s := range c.servers {
		if err := c.writeConfig(s); err != nil {
			return fmt.Errorf("zktest: server %d: %w", s.id-1, err)
		}
	}
	procs := make([]*process, n)
	for i, s := range c.servers {
		if procs[i], err = s.start(c.java, c.classpath, c.out); err != nil {
			return fmt.Errorf("zktest: start server %d: %w", i, err)
		}
	}
	for i, s := range c.servers {
		if _, err := c.waitServing(ctx, i, s, procs[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeConfig writes s's zoo.cfg and, in an ensemble, its myid file, and
// removes any old log.
func (c *Cluster) writeConfig(s *server) error {
	data := filepath.Join(s.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	// A log left in a reused Dir would confuse waitServing.
	if err := os.Remove(s.logPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tick := c.tick.Milliseconds()
	var b strings.Builder
	fmt.Fprintf(&b, "tickTime=%d\n", tick)
	fmt.Fprintf(&b, "initLimit=50\nsyncLimit=20\n")
	fmt.Fprintf(&b, "dataDir=%s\n", data)
	fmt.Fprintf(&b, "clientPort=%d\nclientPortAddress=127.0.0.1\n", s.clientPort)
	fmt.Fprintf(&b, "admin.enableServer=false\n4lw.commands.whitelist=*\n")
	// Without maxSessionTimeout ZooKeeper caps sessions at 20 ticks.
	fmt.Fprintf(&b, "minSessionTimeout=%d\nmaxSessionTimeout=60000\n", 2*tick)
	fmt.Fprintf(&b, "extendedTypesEnabled=true\nforceSync=no\n")
	// Benchmarks and tests open many sessions from 127.0.0.1; the default
	// limit is 60 per address.
	fmt.Fprintf(&b, "maxClientCnxns=0\n")
	if c.tls != nil {
		b.WriteString(c.tls.config(s.securePort))
	}
	if len(c.servers) > 1 {
		for _, peer := range c.servers {
			fmt.Fprintf(&b, "server.%d=127.0.0.1:%d:%d\n", peer.id, peer.quorumPort, peer.electionPort)
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(s.id)+"\n"), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(s.cfgPath(), []byte(b.String()), 0o644)
}

// waitServing polls server i with `srvr` until it reports a Mode (and its
// secure port, if any, accepts connections), its process p exits, or ctx
// ends. It returns the mode.
func (c *Cluster) waitServing(ctx context.Context, i int, s *server, p *process) (string, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		mode, err := srvrMode(ctx, s.addr())
		if err == nil && s.securePort != 0 {
			// ZooKeeper binds the secure port after it starts serving on
			// the plain one.
			err = accepts(ctx, s.secureAddr())
		}
		if err == nil {
			return mode, nil
		}
		// A server whose quorum port is taken does not exit; look for it.
		if log := c.Logs(i); strings.Contains(log, "Address already in use") {
			return "", fmt.Errorf("zktest: server %d (%s): %w; log tail:\n%s", i, s.addr(), errPortClash, tail(log, 30))
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("zktest: server %d (%s) not serving: %w (last: %s); log tail:\n%s",
				i, s.addr(), ctx.Err(), unprefixed(err), tail(c.Logs(i), 30))
		case <-p.done:
			return "", fmt.Errorf("zktest: server %d (%s) exited while starting; log tail:\n%s",
				i, s.addr(), tail(c.Logs(i), 30))
		case <-tick.C:
		}
	}
}

// pickPorts is freePorts; tests replace it to provoke a port clash.
var pickPorts = freePorts

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		// Held open until all are picked, so no port is picked twice.
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
