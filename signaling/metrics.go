package signaling

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the signalling server's Prometheus metrics. Labels are
// bounded sets (kinds, reasons, message types): never devices, calls or sites.
type metrics struct {
	connected         *prometheus.GaugeVec
	disconnects       *prometheus.CounterVec
	handshakeFailures *prometheus.CounterVec
	slowConsumers     prometheus.Counter
	messagesIn        *prometheus.CounterVec
	calls             *prometheus.CounterVec
	activeCalls       prometheus.Gauge
	fanout            prometheus.Histogram
	answerSeconds     prometheus.Histogram
	answeredBy        *prometheus.CounterVec
	doorOpenings      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, h *Hub) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "foyer_signaling_connected_devices", Help: "Devices connected to this node, by kind.",
		}, []string{"kind"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_signaling_disconnects_total", Help: "Closed device connections, by reason.",
		}, []string{"reason"}),
		handshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_signaling_handshake_failures_total", Help: "Connections closed before welcome, by reason.",
		}, []string{"reason"}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "foyer_signaling_slow_consumers_total", Help: "Connections closed because their outbound queue overflowed.",
		}),
		messagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_signaling_messages_received_total", Help: "Messages received from devices, by type.",
		}, []string{"type"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_calls_ended_total", Help: "Calls ended on this node, by end reason.",
		}, []string{"reason"}),
		activeCalls: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "foyer_calls_active", Help: "Calls owned by this node that are ringing or connected.",
		}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "foyer_calls_ring_fanout_devices", Help: "Devices rung per call.",
			Buckets: []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24},
		}),
		answerSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "foyer_calls_answer_seconds", Help: "Time from call to answer.",
			Buckets: []float64{1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60, 120, 180},
		}),
		answeredBy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_calls_answered_total", Help: "Answered calls, by the kind of device that answered.",
		}, []string{"kind"}),
		doorOpenings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "foyer_door_openings_total", Help: "Unlock commands sent to door stations from calls.",
		}),
	}
	cs := []prometheus.Collector{m.connected, m.disconnects, m.handshakeFailures, m.slowConsumers,
		m.messagesIn, m.calls, m.activeCalls, m.fanout, m.answerSeconds, m.answeredBy, m.doorOpenings}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
