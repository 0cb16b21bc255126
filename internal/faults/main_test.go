package faults

import (
	"testing"

	"github.com/lighthouse-zk/lighthouse/zktest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Main(m)) }
