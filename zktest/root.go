package zktest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// rootTimeout bounds createRoot.
const rootTimeout = 10 * time.Second

// createRoot creates a persistent znode at the first path from next that
// does not exist yet, and returns it. It speaks the protocol itself (a
// session of its own, creates, closeSession): the kit uses no client, so
// that any client's tests can use the kit.
func createRoot(servers string, next func() string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rootTimeout)
	defer cancel()
	var errs []error
	for _, addr := range strings.Split(servers, ",") {
		path, err := createRootAt(ctx, addr, next)
		if err == nil {
			return path, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return "", errors.Join(errs...)
}

// Error codes createRootAt tells apart.
const errNodeExists = -110

func createRootAt(ctx context.Context, addr string, next func() string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)

	// ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd.
	req := binary.BigEndian.AppendUint32(nil, 0)
	req = binary.BigEndian.AppendUint64(req, 0)
	req = binary.BigEndian.AppendUint32(req, uint32(rootTimeout/time.Millisecond))
	req = binary.BigEndian.AppendUint64(req, 0)
	req = binary.BigEndian.AppendUint32(req, 16)
	req = append(req, make([]byte, 16)...)
	if err := writeFrame(conn, req); err != nil {
		return "", err
	}
	resp, err := readFrame(conn)
	if err != nil {
		return "", fmt.Errorf("connect response: %w", err)
	}
	if s, ok := parseConnectResponse(resp); !ok || s.id == 0 {
		return "", errors.New("no session")
	}
	call := func(xid int32, op Op, body []byte) (int32, error) {
		req := binary.BigEndian.AppendUint32(nil, uint32(xid))
		req = binary.BigEndian.AppendUint32(req, uint32(op))
		if err := writeFrame(conn, append(req, body...)); err != nil {
			return 0, err
		}
		for {
			// ReplyHeader: int32 xid, int64 zxid, int32 err.
			resp, err := readFrame(conn)
			if err != nil {
				return 0, err
			}
			if len(resp) < 16 {
				return 0, errors.New("short reply")
			}
			if int32(binary.BigEndian.Uint32(resp[:4])) == xid {
				return int32(binary.BigEndian.Uint32(resp[12:16])), nil
			}
		}
	}
	str := func(b []byte, s string) []byte {
		return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
	}
	for xid := int32(1); ; xid++ {
		path := next()
		// CreateRequest: path, data (empty), ACL (world:anyone, all), flags.
		body := str(nil, path)
		body = binary.BigEndian.AppendUint32(body, 0)
		body = binary.BigEndian.AppendUint32(body, 1)
		body = binary.BigEndian.AppendUint32(body, 31)
		body = str(str(body, "world"), "anyone")
		body = binary.BigEndian.AppendUint32(body, 0)
		code, err := call(xid, OpCreate, body)
		if err != nil {
			return "", fmt.Errorf("create %s: %w", path, err)
		}
		switch code {
		case errNodeExists:
			continue // made by an earlier cluster in the same Dir
		case 0:
			call(xid+1, opCloseSession, nil)
			return path, nil
		default:
			return "", fmt.Errorf("create %s: ZooKeeper error %d", path, code)
		}
	}
}
