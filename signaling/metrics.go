package signaling

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/foyer-intercom/foyer/directory"
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
	outcomes          *prometheus.CounterVec
	activeCalls       prometheus.Gauge
	fanout            prometheus.Histogram
	answerSeconds     prometheus.Histogram
	ringSeconds       prometheus.Histogram
	firstRingSeconds  prometheus.Histogram
	cancelSeconds     prometheus.Histogram
	messagesOut       *prometheus.CounterVec
	sentMu            sync.RWMutex
	sentBy            map[string]prometheus.Counter // guarded by sentMu; messagesOut by type
	rateLimited       *prometheus.CounterVec
	answeredBy        *prometheus.CounterVec
	doorOpenings      *prometheus.CounterVec
	keypadCodes       *prometheus.CounterVec
	rejoined          prometheus.Counter
}

// The via label of foyer_door_openings_total.
const (
	openedByCall   = "call"
	openedByKeypad = "keypad"
	openedByApp    = "app"
)

// The result label of foyer_keypad_codes_total.
const (
	keypadOpened = "opened"
	keypadWrong  = "wrong"  // wrong, unknown, or not valid now on this door station
	keypadLocked = "locked" // refused unchecked: the keypad is locked after wrong codes
)

// latencyBuckets spans 50 µs to 2.5 s: the ring path is sub-millisecond
// when healthy, and seconds mean something is badly wrong.
var latencyBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// sentType returns the "type" of an outbound frame: every outbound struct
// marshals its Type field first, so the frame starts {"type":"….
func sentType(frame []byte) []byte {
	const prefix = `{"type":"`
	if len(frame) <= len(prefix) || string(frame[:len(prefix)]) != prefix {
		return []byte("other")
	}
	rest := frame[len(prefix):]
	for i, b := range rest {
		if b == '"' {
			return rest[:i]
		}
	}
	return []byte("other")
}

// sent counts one frame written to a device, by its type. A fan-out writes
// the same frame to many devices, so each type's counter is looked up in
// the vector once and kept (the types are the protocol's, a few dozen).
func (m *metrics) sent(frame []byte) {
	t := sentType(frame)
	m.sentMu.RLock()
	c, ok := m.sentBy[string(t)] // no copy of t for the look-up
	m.sentMu.RUnlock()
	if !ok {
		c = m.messagesOut.WithLabelValues(string(t))
		m.sentMu.Lock()
		m.sentBy[string(t)] = c
		m.sentMu.Unlock()
	}
	c.Inc()
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
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_calls_total", Help: "Calls ended on this node, by outcome: answered, no_answer (rang, nobody answered, the visitor left or the ring timed out), declined, unavailable (nobody could be rung), failed (broke before an answer).",
		}, []string{"outcome"}),
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
		ringSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "foyer_calls_ring_seconds", Help: "Time from receiving a call to the last ring queued to its devices.",
			Buckets: latencyBuckets,
		}),
		firstRingSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "foyer_calls_first_ring_seconds", Help: "Time from receiving a call to its first ring queued to a device.",
			Buckets: latencyBuckets,
		}),
		cancelSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "foyer_calls_cancel_seconds", Help: "Time from receiving the winning answer to the last cancel queued to the other devices.",
			Buckets: latencyBuckets,
		}),
		messagesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_signaling_messages_sent_total", Help: "Messages written to devices, by type.",
		}, []string{"type"}),
		sentBy: map[string]prometheus.Counter{},
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_signaling_rate_limited_total", Help: "Messages and calls refused with rate_limited, by what was limited.",
		}, []string{"what"}),
		answeredBy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_calls_answered_total", Help: "Answered calls, by the kind of device that answered.",
		}, []string{"kind"}),
		doorOpenings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_door_openings_total", Help: "Unlock commands sent to door stations, by what opened the door: call (a device in a call), keypad (a code typed on the door station) or app (a resident, outside a call).",
		}, []string{"via"}),
		keypadCodes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_keypad_codes_total", Help: "Codes typed on door stations' keypads, by result: opened, wrong, or locked (refused unchecked while the keypad is locked after repeated wrong codes).",
		}, []string{"result"}),
		rejoined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "foyer_calls_rejoined_total", Help: "Times a party of an answered call (the device that answered, or the door station) came back within the rejoin window after its connection closed.",
		}),
	}
	cs := []prometheus.Collector{m.connected, m.disconnects, m.handshakeFailures, m.slowConsumers,
		m.messagesIn, m.calls, m.activeCalls, m.fanout, m.answerSeconds, m.answeredBy, m.doorOpenings, m.keypadCodes,
		m.ringSeconds, m.firstRingSeconds, m.cancelSeconds, m.messagesOut, m.rateLimited, m.rejoined, m.outcomes}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// The series alerts divide by or sum exist from the start, at 0: a node
	// that has connected no device, or answered no call, since it started
	// must say so (an absent series makes a sum empty, and the alert
	// silent).
	for _, k := range []directory.DeviceKind{directory.KindDoorStation, directory.KindMonitor, directory.KindApp} {
		m.connected.WithLabelValues(string(k))
		if k != directory.KindDoorStation {
			m.answeredBy.WithLabelValues(string(k))
		}
	}
	for _, r := range []EndReason{EndHangup, EndTimeout, EndNoAnswer, EndDeclined, EndUnavailable, EndFailed, EndTimeLimit} {
		m.calls.WithLabelValues(string(r))
		m.outcomes.WithLabelValues(outcome(false, r))
	}
	m.outcomes.WithLabelValues(outcome(true, EndHangup))
	// So do both door-opening series: a series that appears at its first
	// increment loses that increment to rate().
	for _, via := range []string{openedByCall, openedByKeypad, openedByApp} {
		m.doorOpenings.WithLabelValues(via)
	}
	for _, r := range []string{keypadOpened, keypadWrong, keypadLocked} {
		m.keypadCodes.WithLabelValues(r)
	}
	return m, nil
}

// outcome is what became of a call, for foyer_calls_total: answered (how
// it ended after that is its end reason), or why nobody answered. A
// visitor who left before an answer is a call nobody answered, as the
// devices show it ("Missed call: the visitor left").
func outcome(answered bool, reason EndReason) string {
	switch {
	case answered:
		return "answered"
	case reason == EndDeclined, reason == EndUnavailable:
		return string(reason)
	case reason == EndNoAnswer, reason == EndHangup:
		return string(EndNoAnswer)
	default: // failed, timeout: the door station's connection broke, or the node shut down
		return string(EndFailed)
	}
}
