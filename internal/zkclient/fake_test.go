package zkclient

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeServer accepts connections, answers the handshake with session 1,
// then writes the raw bytes of the next script entry (one per connection)
// and keeps reading until the client hangs up.
func fakeServer(t *testing.T, scripts [][]byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var size [4]byte
				if _, err := io.ReadFull(c, size[:]); err != nil {
					return
				}
				if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
					return
				}
				var e enc
				e.int32(0)
				e.int32(0)     // protocolVersion
				e.int32(10000) // timeOut
				e.int64(1)     // sessionId
				e.buffer(make([]byte, 16))
				e.bool(false)
				putLength(e.b)
				c.Write(e.b)
				if i < len(scripts) {
					c.Write(scripts[i])
				}
				io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestBadFramesDropTheConnection feeds the client frames that break the
// protocol; each must end the connection (without panic or a large
// allocation), after which the client reconnects.
func TestBadFramesDropTheConnection(t *testing.T) {
	frame, hdr := rawFrame, hdrB // see hostile_server_test.go
	scripts := [][]byte{
		{0xff, 0xff, 0xff, 0xf0},                 // negative length
		{0x7f, 0xff, 0xff, 0xff},                 // 2 GiB
		{0, 0, 0, 3, 1, 2, 3},                    // shorter than a reply header
		frame(hdr(-1, 0, 0), []byte{0, 0, 0, 1}), // notification cut short
		frame(hdr(42, 0, 0)),                     // a reply nobody asked for
	}
	addr := fakeServer(t, scripts)
	ev := newEvents()
	c, _ := connectT(t, "", Config{Servers: []string{addr}, OnEvent: ev.on})
	for range scripts {
		e := ev.await(t, StateDisconnected)
		if !errors.Is(e.Err, errProtocol) {
			t.Errorf("disconnected by %v, want a protocol error", e.Err)
		}
		ev.await(t, StateConnected)
	}
	if c.SessionID() != 1 {
		t.Fatalf("session %#x", c.SessionID())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c.Close(ctx) // the fake never answers closeSession
	if c.State() != StateClosed {
		t.Fatalf("state %v after Close", c.State())
	}
}
