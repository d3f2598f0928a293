package turn

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes the server's counters to Prometheus at scrape time.
type Collector struct {
	s                      *Server
	active, total, refused *prometheus.Desc
	bytes, dropped         *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the collector of s's metrics, to register once.
func NewCollector(s *Server) *Collector {
	return &Collector{
		s:       s,
		active:  prometheus.NewDesc("foyer_turn_allocations_active", "Live TURN allocations.", nil, nil),
		total:   prometheus.NewDesc("foyer_turn_allocations_total", "TURN allocations made.", nil, nil),
		refused: prometheus.NewDesc("foyer_turn_refused_total", "TURN requests refused, by reason (expired, quota, loopback, private, …).", []string{"reason"}, nil),
		bytes:   prometheus.NewDesc("foyer_turn_relayed_bytes_total", "Payload bytes relayed, by direction: to_peer, written to peers; from_peer, passed on to clients.", []string{"direction"}, nil),
		dropped: prometheus.NewDesc("foyer_turn_peer_packets_dropped_total", "Packets that reached a relay from a peer allow_peers does not list.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.active
	ch <- c.total
	ch <- c.refused
	ch <- c.bytes
	ch <- c.dropped
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		if m, err := prometheus.NewConstMetric(d, t, v, labels...); err == nil {
			ch <- m
		}
	}
	send(c.active, prometheus.GaugeValue, float64(st.Active))
	send(c.total, prometheus.CounterValue, float64(st.Total))
	send(c.bytes, prometheus.CounterValue, float64(st.BytesToPeers), "to_peer")
	send(c.bytes, prometheus.CounterValue, float64(st.BytesFromPeers), "from_peer")
	send(c.dropped, prometheus.CounterValue, float64(st.DroppedFromPeers))
	for reason, n := range st.Refused {
		send(c.refused, prometheus.CounterValue, float64(n), reason)
	}
}
