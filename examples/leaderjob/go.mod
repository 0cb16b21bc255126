module example.com/leaderjob

go 1.26.8

require (
	github.com/lighthouse-zk/lighthouse v0.0.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.25.0
)

require github.com/cenkalti/backoff/v4 v4.3.0 // indirect

// This example lives in lighthouse's repository and builds against it.
// Elsewhere, drop this line and require a released version.
replace github.com/lighthouse-zk/lighthouse => ../..
