package zkclient_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// Connect, create a znode, and wait for its change with a one-shot watch.
func Example() {
	cl, err := zktest.SharedCluster()
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := zkclient.Connect(ctx, zkclient.Config{Servers: []string{cl.Addr(0)}, SessionTimeout: 5 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ctx)

	path, _, err := c.Create(ctx, "/example-", []byte("v1"), zkclient.WorldACL(zkclient.PermAll), zkclient.EphemeralSequential, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	data, _, changed, err := c.GetW(ctx, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", data)
	if _, err := c.Set(ctx, path, []byte("v2"), -1); err != nil {
		fmt.Println(err)
		return
	}
	ev := <-changed
	fmt.Println(ev.Type, ev.Path == path)
	// Output:
	// v1
	// NodeDataChanged true
}
