package lighthouse_test

import (
	"context"
	"fmt"
	"log"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/lighthouse-zk/lighthouse"
)

// Metrics go to the MeterProvider the application installs: here one with a
// manual reader, read back at once. A service would use an exporter's
// reader instead (see the README's "Metrics" section for Prometheus).
func ExampleWithMeterProvider() {
	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	sess, err := lighthouse.Connect(ctx, zkAddress(), lighthouse.WithMeterProvider(mp))
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	leadership, err := sess.Elect(ctx, "/examples/metrics/leader", lighthouse.WithID("node-1"))
	if err != nil {
		log.Fatal(err)
	}
	for l := range leadership {
		if l.IsLeader {
			break
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == "lighthouse.election.leader" {
			for _, p := range m.Data.(metricdata.Gauge[int64]).DataPoints {
				id, _ := p.Attributes.Value("lighthouse.participant.id")
				fmt.Printf("%s %s = %d\n", m.Name, id.AsString(), p.Value)
			}
		}
	}
	// Output: lighthouse.election.leader node-1 = 1
}
