package lighthouse

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// Error messages say "lighthouse:" once, with the operation and the path.
func TestErrorMessages(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	owner := connect(t, root, WithDigestAuth("owner", "pw"))
	s := connect(t, root)
	ctx := testCtx(t)
	if _, err := owner.Create(ctx, "/locked", nil, Persistent, CreateACL(ACL(owner.acl[0]))); err != nil {
		t.Fatal(err)
	}
	_, electErr := s.Elect(ctx, "/locked/leader", WithID("a"))
	_, _, getErr := s.Get(ctx, "/missing")
	_, regErr := s.Register(ctx, "api", Node{ID: "a/b"})
	_, connErr := Connect(ctx, "127.0.0.1:99999")
	shortCtx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	<-shortCtx.Done()
	_, createErr := s.Create(shortCtx, "/x", nil, Persistent)
	_, barrierErr := s.Barrier(ctx, "/b", 0)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{electErr, "lighthouse: elect /locked/leader: not authorized"},
		{getErr, "lighthouse: get /missing: node does not exist"},
		{regErr, `lighthouse: register api: invalid id "a/b": contains NUL or '/'`},
		{connErr, `lighthouse: connect 127.0.0.1:99999: invalid connect string: port "99999"`},
		{createErr, "lighthouse: create /x: context deadline exceeded"},
		{barrierErr, "lighthouse: barrier /b: invalid barrier count: 0"},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("got  %v\nwant %s", tc.err, tc.want)
		}
		if tc.err != nil && strings.Count(tc.err.Error(), "lighthouse:") != 1 {
			t.Errorf("prefix not once: %v", tc.err)
		}
	}
	if !errors.Is(electErr, ErrNoAuth) || !errors.Is(regErr, ErrInvalidID) {
		t.Errorf("sentinels lost: %v, %v", electErr, regErr)
	}
}
