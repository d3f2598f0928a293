package signaling

// The Redis router's metrics.

import "github.com/prometheus/client_golang/prometheus"

// routerMetrics are the Redis router's Prometheus metrics.
type routerMetrics struct {
	redisErrors  *prometheus.CounterVec
	rtt          prometheus.Histogram
	forwarded    *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	resubscribes prometheus.Counter
	swept        prometheus.Counter
	resyncs      *prometheus.CounterVec
}

func newRouterMetrics(reg prometheus.Registerer) (*routerMetrics, error) {
	m := &routerMetrics{
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_redis_errors_total", Help: "Failed Redis operations, by operation: the router's, and the directory's and accounts' commands (store).",
		}, []string{"op"}),
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "foyer_redis_rtt_seconds", Help: "Round-trip time of the router's Redis operations and pub/sub probes.",
			Buckets: latencyBuckets,
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_router_envelopes_sent_total", Help: "Envelopes published to other nodes (and probes to this one), by kind.",
		}, []string{"kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_router_envelopes_dropped_total", Help: "Cross-node envelopes lost, by reason.",
		}, []string{"reason"}),
		resubscribes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "foyer_router_resubscribes_total", Help: "Pub/sub subscriptions replaced because their probes stopped arriving.",
		}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "foyer_router_leases_swept_total", Help: "Presence leases deleted because no connection held them (a dead node's, or a delete lost to a Redis error).",
		}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "foyer_router_presence_resyncs_total", Help: "Rebuilds of the node's view of where other nodes' devices are, from the leases in Redis, by cause (subscribe, lost_event, periodic).",
		}, []string{"cause"}),
	}
	for _, c := range []prometheus.Collector{m.redisErrors, m.rtt, m.forwarded, m.dropped, m.resubscribes, m.swept, m.resyncs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// The series the alerts sum (FoyerRedisErrors, FoyerPresenceEventsLost,
	// FoyerClusterVersionsMixed) exist at 0 from the start, as the hub's
	// do: a series that appears at its first increment loses that
	// increment to rate() and increase(), and a node that has failed
	// nothing shows 0, not a gap.
	for _, op := range redisOps {
		m.redisErrors.WithLabelValues(op)
	}
	for _, cause := range []string{"subscribe", "lost_event", "periodic"} {
		m.resyncs.WithLabelValues(cause)
	}
	for _, reason := range []string{"queue_full", "redis_error", "no_receiver", "not_here", "malformed", "unknown_kind"} {
		m.dropped.WithLabelValues(reason)
	}
	return m, nil
}

// redisOps are the op labels of foyer_redis_errors_total: what the router
// was doing when Redis failed it (RedisRouter.fail).
var redisOps = []string{"publish", "presence", "alive", "reassert", "locate", "look again", "announce",
	"subscribe", "presence subscribe", "presence resync", "presence sweep", storeOp}

// storeOp is the op label of the stores' failed Redis commands, which
// the server counts with a hook on their client (StoreErrors).
const storeOp = "store"
