package zktest

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// TestExpireAttachesAgainWhenUnanswered: a server that closes the first
// attaching connection before it answers (as ZooKeeper once did in a full
// run) is tried again, and the session is closed on the second.
func TestExpireAttachesAgainWhenUnanswered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := session{id: 0x1234, passwd: []byte("secret0123456789")}
	served := make(chan int, 1)
	go func() {
		n := 0
		defer func() { served <- n }()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			n++
			if n == 1 {
				conn.Close() // unanswered
				continue
			}
			if _, err := readFrame(conn); err != nil { // ConnectRequest
				conn.Close()
				return
			}
			resp := binary.BigEndian.AppendUint32(nil, 0)     // protocolVersion
			resp = binary.BigEndian.AppendUint32(resp, 10000) // timeout
			resp = binary.BigEndian.AppendUint64(resp, uint64(s.id))
			resp = binary.BigEndian.AppendUint32(resp, uint32(len(s.passwd)))
			resp = append(resp, s.passwd...)
			writeFrame(conn, resp)
			readFrame(conn)                                // closeSession
			reply := binary.BigEndian.AppendUint32(nil, 1) // xid
			reply = binary.BigEndian.AppendUint64(reply, 7)
			reply = binary.BigEndian.AppendUint32(reply, 0)
			writeFrame(conn, reply)
			conn.Close()
			ln.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := expireSession(ctx, ln.Addr().String(), s); err != nil {
		t.Fatalf("expireSession: %v", err)
	}
	if n := <-served; n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}
