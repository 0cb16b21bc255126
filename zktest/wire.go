package zktest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// Op is a ZooKeeper request opcode, as in the request header of the wire
// protocol, for LoseReplyTo.
type Op int32

// Request opcodes for LoseReplyTo. Which one a client sends depends on the
// client and the call: lighthouse sends OpCreate2 for Create (and for the
// nodes of its recipes), OpCreateContainer and OpCreateTTL for those nodes;
// other clients may send OpCreate.
const (
	OpCreate          Op = 1
	OpDelete          Op = 2
	OpSetData         Op = 5
	OpMulti           Op = 14
	OpCreate2         Op = 15
	OpCreateContainer Op = 19
	OpCreateTTL       Op = 21
	opCloseSession    Op = -11
)

// maxFrame bounds a plausible frame length. A stream whose first bytes read
// as a larger length is not ZooKeeper's framed protocol: four-letter words
// such as "srvr" read as lengths above 1.6e9.
const maxFrame = 1 << 28

// headLen is how much of each frame body a frameScanner captures: enough for
// a ConnectResponse with its 16-byte password.
const headLen = 4 + 4 + 8 + 4 + 16

// frameScanner follows the frames of one direction of a ZooKeeper connection
// (int32 length, then body) in a byte stream it does not change, and shows the
// start of each body to a callback. It gives up on a stream that is not
// framed.
type frameScanner struct {
	off    bool    // not ZooKeeper framing; stop looking
	frames int     // frames whose head has been shown
	size   [4]byte // the current frame's length prefix
	nsize  int     // bytes of size seen
	remain int     // body bytes of the current frame not yet seen
	head   []byte  // start of the current body, up to headLen
	shown  bool    // head of the current frame has been shown
	start  int     // offset of the current frame in the current chunk; 0 if it began earlier
}

// scan feeds the next chunk of the stream. For each frame, once headLen
// bytes of its body (or the whole body, if shorter) have been seen, it calls
// fn with the frame's index (0 for the first) and that head. If fn returns
// true, scan stops and returns the offset in b where that frame began (0 if
// it began in an earlier chunk); otherwise it returns -1.
func (s *frameScanner) scan(b []byte, fn func(i int, head []byte) bool) int {
	s.start = 0
	for i := 0; i < len(b) && !s.off; {
		if s.nsize < 4 {
			if s.nsize == 0 {
				s.start = i
			}
			k := copy(s.size[s.nsize:], b[i:])
			s.nsize += k
			i += k
			if s.nsize < 4 {
				break
			}
			n := binary.BigEndian.Uint32(s.size[:])
			if n > maxFrame {
				s.off = true
				break
			}
			s.remain, s.head, s.shown = int(n), s.head[:0], false
		} else {
			k := min(s.remain, len(b)-i)
			if !s.shown {
				s.head = append(s.head, b[i:i+min(k, headLen-len(s.head))]...)
			}
			s.remain -= k
			i += k
		}
		if !s.shown && (len(s.head) == headLen || s.remain == 0) {
			s.shown = true
			s.frames++
			if fn(s.frames-1, s.head) {
				return s.start
			}
		}
		if s.remain == 0 {
			s.nsize = 0
		}
	}
	return -1
}

// session identifies a ZooKeeper session, as sniffed from a ConnectResponse.
type session struct {
	id     int64
	passwd []byte
}

// parseConnectResponse reads the session from the head of a ConnectResponse
// body: int32 protocolVersion, int32 timeOut, int64 sessionId, buffer passwd.
func parseConnectResponse(head []byte) (session, bool) {
	if len(head) < 20 {
		return session{}, false
	}
	id := int64(binary.BigEndian.Uint64(head[8:16]))
	n := int(int32(binary.BigEndian.Uint32(head[16:20])))
	if id == 0 || n < 0 || 20+n > len(head) {
		return session{}, false
	}
	return session{id: id, passwd: append([]byte(nil), head[20:20+n]...)}, true
}

// expireSession ends session s on the server at addr the way Curator's
// KillSession does: it attaches to the session from a connection of its own
// and closes it. The server then drops the session, its ephemeral nodes and
// watches, and closes the session's other connections; their client sees the
// session expire when it reconnects.
func expireSession(ctx context.Context, addr string, s session) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	// The server may close an attaching connection before it answers (seen
	// once in a full run, as the client's own connection was being
	// closed). Nothing was sent to the session then: attach again.
	for {
		err := attachAndClose(ctx, addr, s)
		if !errors.Is(err, errUnanswered) || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
}

// errUnanswered: the server closed the connection before it answered the
// ConnectRequest.
var errUnanswered = errors.New("closed before the connect response")

// attachAndClose attaches to session s from a connection of its own and
// closes it.
func attachAndClose(ctx context.Context, addr string, s session) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	// ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd.
	req := binary.BigEndian.AppendUint32(nil, 0)
	req = binary.BigEndian.AppendUint64(req, 0)
	req = binary.BigEndian.AppendUint32(req, 10000)
	req = binary.BigEndian.AppendUint64(req, uint64(s.id))
	req = binary.BigEndian.AppendUint32(req, uint32(len(s.passwd)))
	req = append(req, s.passwd...)
	if err := writeFrame(conn, req); err != nil {
		return err
	}
	resp, err := readFrame(conn)
	if err != nil {
		if ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)) {
			return fmt.Errorf("connect response: %w (%w)", errUnanswered, err)
		}
		return fmt.Errorf("connect response: %w", err)
	}
	if got, ok := parseConnectResponse(resp); !ok || got.id != s.id {
		return fmt.Errorf("session %#x is gone already", s.id)
	}

	// closeSession: RequestHeader{xid 1, type -11} with an empty body.
	op := opCloseSession
	req = binary.BigEndian.AppendUint32(req[:0], 1)
	req = binary.BigEndian.AppendUint32(req, uint32(op))
	if err := writeFrame(conn, req); err != nil {
		return err
	}
	for {
		// ReplyHeader: int32 xid, int64 zxid, int32 err. Skip anything but ours.
		resp, err := readFrame(conn)
		if err != nil {
			return fmt.Errorf("closeSession reply: %w", err)
		}
		if len(resp) < 16 {
			return errors.New("closeSession reply: short frame")
		}
		if int32(binary.BigEndian.Uint32(resp[:4])) != 1 {
			continue
		}
		if code := int32(binary.BigEndian.Uint32(resp[12:16])); code != 0 {
			return fmt.Errorf("closeSession: ZooKeeper error %d", code)
		}
		return nil
	}
}

func writeFrame(w io.Writer, body []byte) error {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	_, err := w.Write(append(b, body...))
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 1<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}
