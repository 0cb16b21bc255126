module example.com/leaderjob

go 1.26.8

require (
	github.com/lighthouse-zk/lighthouse v0.0.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.25.0
)

require (
	github.com/cenkalti/backoff/v4 v4.3.0 // indirect
	github.com/go-zookeeper/zk v1.0.4 // indirect
)

// This example lives in lighthouse's repository and builds against it.
// Elsewhere, drop this line and require a released version.
replace github.com/lighthouse-zk/lighthouse => ../..

// lighthouse's own module uses go-zookeeper v1.0.4 with a fix for a data race
// on reconnect (see ../../third_party/zk/PATCHED.md). A dependency's replace
// directives do not apply here, so this module repeats it: its tests cut and
// expire connections under -race. Without it the race detector can report
// that race in go-zookeeper.
replace github.com/go-zookeeper/zk => ../../third_party/zk
