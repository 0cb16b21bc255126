package faults

import (
	"testing"

	"github.com/lighthouse-zk/lighthouse/internal/testzk"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(testzk.Main(m)) }
