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
