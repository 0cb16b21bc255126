module github.com/lighthouse-zk/lighthouse

go 1.26.8

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/go-zookeeper/zk v1.0.4
	go.uber.org/goleak v1.3.0
)

require golang.org/x/sync v0.25.0

// go-zookeeper v1.0.4 with a fix for a data race on reconnect; see third_party/zk/PATCHED.md.
replace github.com/go-zookeeper/zk => ./third_party/zk
