package zktest

import (
	"context"
	"io"
	"net"
	"strings"
	"time"
)

// fourLetterWord sends a ZooKeeper four-letter command such as "srvr" to addr
// and returns the whole answer. The server closes the connection after
// answering, so the answer ends at EOF.
func fourLetterWord(ctx context.Context, addr, cmd string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := io.WriteString(conn, cmd); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

// srvrMode returns the "Mode: " value of addr's srvr answer: "standalone",
// "leader" or "follower". A server that is not serving requests (starting,
// or an ensemble member without quorum) answers without a mode, which is an
// error here.
func srvrMode(ctx context.Context, addr string) (string, error) {
	out, err := fourLetterWord(ctx, addr, "srvr", time.Second)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(out) {
		if mode, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(mode), nil
		}
	}
	return "", &notServingError{addr: addr, answer: strings.TrimSpace(out)}
}

type notServingError struct{ addr, answer string }

func (e *notServingError) Error() string {
	return "zktest: " + e.addr + " is not serving: " + e.answer
}
