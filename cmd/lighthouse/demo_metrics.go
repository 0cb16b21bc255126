package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/lighthouse-zk/lighthouse"
)

// demoMetrics gives every session of the demo one OpenTelemetry SDK
// provider, read at the end through a manual reader, to show what the
// metrics recorded.
type demoMetrics struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newDemoMetrics() *demoMetrics {
	r := sdkmetric.NewManualReader()
	return &demoMetrics{reader: r, mp: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))}
}

// option makes a session record into the demo's provider.
func (m *demoMetrics) option() lighthouse.Option { return lighthouse.WithMeterProvider(m.mp) }

// recorded is what the demo reads back: totals over every session.
type recorded struct {
	err        error
	changes    int64
	handovers  metricdata.HistogramDataPoint[float64] // merged over participants
	bounds     []float64
	reconnects int64
	expiries   int64
	members    int64
	hasMembers bool
	picks      int64
	reported   int64
}

// collect reads the metrics. Call it before the sessions close: a closed
// session and a stopped balancer are no longer observed.
func (m *demoMetrics) collect() recorded {
	var rm metricdata.ResourceMetrics
	var r recorded
	if r.err = m.reader.Collect(context.Background(), &rm); r.err != nil {
		return r
	}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					state, _ := p.Attributes.Value("lighthouse.session.state")
					switch {
					case mt.Name == "lighthouse.election.changes":
						r.changes += p.Value
					case mt.Name == "lighthouse.session.state_changes" && state == attribute.StringValue("reconnected"):
						r.reconnects += p.Value
					case mt.Name == "lighthouse.session.state_changes" && state == attribute.StringValue("expired"):
						r.expiries += p.Value
					case mt.Name == "lighthouse.balancer.picks":
						r.picks += p.Value
					case mt.Name == "lighthouse.balancer.errors":
						r.reported += p.Value
					}
				}
			case metricdata.Gauge[int64]:
				if mt.Name == "lighthouse.members" {
					for _, p := range d.DataPoints {
						r.members, r.hasMembers = p.Value, true
					}
				}
			case metricdata.Histogram[float64]:
				if mt.Name == "lighthouse.election.handover" {
					for _, p := range d.DataPoints {
						r.merge(p)
					}
				}
			}
		}
	}
	return r
}

// merge adds one participant's handovers to the totals.
func (r *recorded) merge(p metricdata.HistogramDataPoint[float64]) {
	h := &r.handovers
	if h.Count == 0 {
		*h = p
		h.BucketCounts = append([]uint64(nil), p.BucketCounts...)
		r.bounds = p.Bounds
		return
	}
	h.Count += p.Count
	h.Sum += p.Sum
	for i := range h.BucketCounts {
		h.BucketCounts[i] += p.BucketCounts[i]
	}
	if v, ok := p.Max.Value(); ok {
		if cur, _ := h.Max.Value(); v > cur {
			h.Max = p.Max
		}
	}
}

// quantile estimates the q-quantile of the handovers as Prometheus's
// histogram_quantile does: linearly within the bucket that holds it.
func (r *recorded) quantile(q float64) time.Duration {
	h := r.handovers
	rank := q * float64(h.Count)
	var seen uint64
	for i, c := range h.BucketCounts {
		if float64(seen+c) < rank || c == 0 {
			seen += c
			continue
		}
		lo, hi := 0.0, math.Inf(1)
		if i > 0 {
			lo = r.bounds[i-1]
		}
		if i < len(r.bounds) {
			hi = r.bounds[i]
		}
		if max, ok := h.Max.Value(); ok && max < hi {
			hi = max
		}
		return seconds(lo + (hi-lo)*(rank-float64(seen))/float64(c))
	}
	return 0
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// print writes the table of what the metrics recorded.
func (r recorded) print(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintln(w, "\nmetrics (OpenTelemetry, read through the SDK)")
	if r.err != nil {
		fmt.Fprintf(w, "unreadable\t%v\n", r.err)
		return
	}
	fmt.Fprintf(w, "leadership changes\t%d\n", r.changes)
	if h := r.handovers; h.Count > 0 {
		max, _ := h.Max.Value()
		fmt.Fprintf(w, "handovers\t%d: p50 %v, max %v\n", h.Count,
			r.quantile(0.5).Round(100*time.Microsecond), seconds(max).Round(100*time.Microsecond))
	} else {
		fmt.Fprintf(w, "handovers\t0\n")
	}
	fmt.Fprintf(w, "reconnects\t%d\n", r.reconnects)
	fmt.Fprintf(w, "expiries\t%d\n", r.expiries)
	if r.hasMembers {
		fmt.Fprintf(w, "members\t%d\n", r.members)
	}
	fmt.Fprintf(w, "balancer picks\t%d (errors reported %d)\n", r.picks, r.reported)
}
