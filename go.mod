module github.com/lighthouse-zk/lighthouse

go 1.26.8

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/go-zookeeper/zk v1.0.4
	go.uber.org/goleak v1.3.0
)

require golang.org/x/sync v0.25.0
