package zkclient

import (
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestWriterKeepsOrder writes numbered frames faster than a synchronous
// pipe takes them and checks that they arrive whole and in order.
func TestWriterKeepsOrder(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	w := &writer{conn: client, raw: client, timeout: 10 * time.Second, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run()
	}()
	const n = 20000
	go func() {
		for i := range n {
			var e enc
			e.int32(0)
			e.int32(int32(i))
			e.b = append(e.b, make([]byte, i%50)...)
			putLength(e.b)
			w.write(e.b)
			if i%3 == 0 {
				runtime.Gosched() // let the writer take a partial batch
			}
		}
	}()
	var size [4]byte
	for i := range n {
		if _, err := io.ReadFull(server, size[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(server, body); err != nil {
			t.Fatal(err)
		}
		if got := int(binary.BigEndian.Uint32(body)); got != i || len(body) != 4+i%50 {
			t.Fatalf("frame %d: got number %d, %d bytes", i, got, len(body))
		}
	}
	close(w.quit)
	client.Close()
	<-done
}

// Over a socket the writer sends at once when nothing is queued, without
// waking its goroutine; once the socket is full (the reader holds off) the
// rest queues, and every frame still arrives whole and in order.
func TestWriterSendsAtOnceAndKeepsOrderOverASocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	rc, err := client.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{conn: client, raw: client, rc: rc, timeout: 10 * time.Second, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run()
	}()
	frame := func(i int) []byte {
		var e enc
		e.int32(0)
		e.int32(int32(i))
		e.b = append(e.b, make([]byte, i%5000)...)
		putLength(e.b)
		return e.b
	}
	w.write(frame(0))
	if len(w.wake) != 0 || len(w.buf) != 0 {
		t.Fatal("a write with nothing queued did not go to the socket at once")
	}
	const n = 4000 // about 10 MB: more than the socket takes while unread
	wrote := make(chan struct{})
	go func() {
		for i := 1; i < n; i++ {
			w.write(frame(i))
		}
		close(wrote)
	}()
	var size [4]byte
	for i := range n {
		if i == 1 {
			<-wrote // the writer met a full socket; read now
		}
		if _, err := io.ReadFull(server, size[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(server, body); err != nil {
			t.Fatal(err)
		}
		if got := int(binary.BigEndian.Uint32(body)); got != i || len(body) != 4+i%5000 {
			t.Fatalf("frame %d: got number %d, %d bytes", i, got, len(body))
		}
	}
	close(w.quit)
	client.Close()
	<-done
}
