package signaling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/ctxsleep"
	"github.com/foyer-intercom/foyer/internal/redisbatch"
)

var _ Router = (*RedisRouter)(nil)

// Redis keys and channels of the router. (The directory's keys are in
// directory/redis*.go.)
const (
	// presenceKey(device) STRING "<node> <conn>", no TTL: the node and
	// connection holding a device, believed while aliveKey(node) lives. Set
	// on attach; deleted on detach only while it is still that
	// connection's (compare-and-delete), so a reconnect elsewhere wins; a
	// dead node's are deleted by the next resync of any node
	// (router_redis_leases.go).
	presencePrefix = "foyer:presence:"
	// aliveKey(node) STRING, TTL LeaseTTL: the node is alive; renewed every
	// LeaseRefresh.
	alivePrefix = "foyer:alive:"
	// ringingKey(site, number) SET of call IDs ringing for that call ID, TTL
	// ringingTTL (longer than the longest ring timeout): written by the
	// owning node, read by nodes where a device of that ID connects.
	ringingPrefix = "foyer:ringing:"
	// nodeChannel(node): sharded pub/sub channel (SPUBLISH/SSUBSCRIBE,
	// Redis 7+) of envelopes for one node. Sharded, so that in a Redis
	// Cluster each node's channel lives on one shard instead of being
	// broadcast to all, and SPUBLISH's receiver count is exact.
	nodeChannelPrefix = "foyer:node:"
)

// RedisRouterOptions tune a RedisRouter; zero fields take their defaults.
type RedisRouterOptions struct {
	// LeaseTTL is how long a node that died without a word is still
	// believed to hold its devices: after it, no call rings a dead socket.
	// Default 15 s.
	LeaseTTL time.Duration
	// LeaseRefresh renews the node's alive key (which keeps its devices'
	// leases believed) and tells the other nodes it is alive. Default 4 s;
	// at most a third of LeaseTTL.
	LeaseRefresh time.Duration
}

const (
	defaultLeaseTTL     = 15 * time.Second
	defaultLeaseRefresh = 4 * time.Second
	// ringingTTL outlives the longest ring timeout (180 s) of any site.
	ringingTTL = 200 * time.Second
	// probeInterval is how often a node sends itself a probe over pub/sub;
	// probeTimeout without one back means the subscription is dead although
	// it looks healthy, so it is replaced.
	probeInterval = time.Second
	probeTimeout  = 3 * time.Second
	// publishQueue bounds frames waiting for the publisher goroutine.
	publishQueue = 8192
	// publishBatch is how many queued commands go out in one pipeline.
	publishBatch = 256
	// redisOpTimeout bounds one Redis round trip of background work.
	redisOpTimeout = time.Second
	// resendFirst is how long envelopes that did not reach their node wait
	// before they are sent again; each failed resend doubles the wait, up
	// to resendMax. They are dropped once they have waited LeaseTTL.
	resendFirst = 100 * time.Millisecond
	resendMax   = time.Second
)

// queued is one command for the publisher goroutine: an envelope to
// PUBLISH to a node, or a ringing-set change.
type queued struct {
	node    string
	env     envelope
	ringKey string // SADD/SREM ringKey member, when node is empty
	member  string
	add     bool
}

// heldBack holds, in queue order, the envelopes for one node that did not
// reach it (a Redis error, or no subscriber: the node resubscribing after
// Redis came back), and those queued for it since, which wait behind them.
type heldBack struct {
	q     []queued
	since time.Time // the first failure
	why   string    // the last failure: redis_error or no_receiver
}

// RedisRouter is the Router of a node in a cluster sharing Redis. It wraps a
// Memory for this node's connections and adds presence leases, a channel
// per node, and a liveness probe on its subscription.
type RedisRouter struct {
	// Immutable after construction.
	*Memory
	node    string
	rdb     redis.UniversalClient
	opts    RedisRouterOptions
	log     *slog.Logger
	out     chan queued   // to the sender (the publisher goroutine or Flush)
	kick    chan struct{} // wakes the publisher goroutine; capacity 1
	ringQ   chan queued   // ringing-set changes, to the ringingSets goroutine
	metrics *routerMetrics

	mu        sync.Mutex
	where     map[directory.DeviceID]location // guarded by mu; remote devices, the presence view
	nodeSeen  map[string]time.Time            // guarded by mu; last event from each other node
	selfHeard time.Time                       // guarded by mu; last of our own events heard back
	synced    bool                            // guarded by mu; the view was rebuilt since subscribing
	lastSeq   map[string]uint64               // guarded by mu; the last presence event number heard from each other node

	seq          atomic.Uint64 // this node's last presence event number
	aliveWritten atomic.Bool   // this node's alive key was written since it started

	sendMu sync.Mutex
	batch  []queued             // guarded by sendMu; reused between sends
	held   map[string]*heldBack // guarded by sendMu; by node, what waits to be sent again (resend)
	// heldFull holds the nodes whose held-back queue is full (a string
	// key, no value), so that publish, which does not take sendMu (a send
	// holds it for a round trip), can refuse what would be dropped.
	heldFull sync.Map

	leases *redisbatch.Batcher // every lease write, in order (router_redis_leases.go)
	// calls runs what other nodes send about this node's calls (messages,
	// joins, left, forgotten) in order per call, off the receiving goroutine.
	calls callQueues

	probeMu   sync.Mutex
	lastProbe time.Time // guarded by probeMu
	healthy   bool      // guarded by probeMu; false from a probe timeout until the next probe arrives
	// leasesDoubtful: a Redis operation failed since the leases were last
	// re-asserted, so Redis may have lost them (a restart comes back
	// empty); the next probe to come back re-asserts them.
	leasesDoubtful atomic.Bool
	// reasserting: a reassert started by a probe runs (reassertSoon).
	reasserting atomic.Bool
	// subscribed: Redis has confirmed this node's subscription to its
	// channel (and it has not been replaced since).
	subscribed atomic.Bool
	// unknownWarned: when (Unix ns) an envelope of a kind this node does
	// not know was last logged (receive), at most once a minute.
	unknownWarned atomic.Int64

	liveMu   sync.Mutex
	liveAsks map[string]chan liveAnswer // guarded by liveMu; LiveElsewhere's queries waiting for answers, by ID
}

// NewRedisRouter returns the router of node on rdb. Metrics register with reg.
func NewRedisRouter(node string, rdb redis.UniversalClient, opts RedisRouterOptions, reg prometheus.Registerer, log *slog.Logger) (*RedisRouter, error) {
	if !ValidNodeID(node) {
		return nil, errors.New("signaling: node ID must be 1-32 characters of a-z, 0-9 and -")
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = defaultLeaseTTL
	}
	if opts.LeaseRefresh == 0 {
		opts.LeaseRefresh = min(defaultLeaseRefresh, opts.LeaseTTL/3)
	}
	if opts.LeaseRefresh <= 0 || opts.LeaseRefresh > opts.LeaseTTL/3 {
		return nil, errors.New("signaling: the lease refresh must be positive and at most a third of the lease TTL")
	}
	m, err := newRouterMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &RedisRouter{
		Memory:   NewMemory(),
		node:     node,
		rdb:      rdb,
		opts:     opts,
		log:      log.With("node", node),
		out:      make(chan queued, publishQueue),
		held:     make(map[string]*heldBack),
		kick:     make(chan struct{}, 1),
		leases:   redisbatch.New(rdb, presenceBatch, leaseTimeout),
		ringQ:    make(chan queued, publishQueue),
		metrics:  m,
		where:    make(map[directory.DeviceID]location),
		nodeSeen: make(map[string]time.Time),
		lastSeq:  make(map[string]uint64),
		liveAsks: make(map[string]chan liveAnswer),
	}, nil
}

func presenceKey(id directory.DeviceID) string { return presencePrefix + string(id) }
func ringingKey(t directory.Target) string {
	return ringingPrefix + string(t.Site) + ":" + string(t.Number)
}
func nodeChannel(node string) string { return nodeChannelPrefix + node }
func aliveKey(node string) string    { return alivePrefix + node }

// Attach implements Router: the local attach always succeeds; the lease is
// best effort here and reasserted once Redis answers again, so devices can
// connect (and take local calls) while Redis is away.
func (r *RedisRouter) Attach(ctx context.Context, c *Conn) (*Conn, error) {
	prev, _ := r.Memory.Attach(ctx, c)
	r.attachLease(c)
	return prev, nil
}

// compareAndDelete deletes KEYS[1] only if it still holds ARGV[1].
var compareAndDelete = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Detach implements Router.
func (r *RedisRouter) Detach(ctx context.Context, c *Conn) bool {
	if !r.Memory.Detach(ctx, c) {
		return false
	}
	r.detachLease(c)
	return true
}

// Deliver implements Router: local connections directly, remote devices
// through their node's channel, queued for the publisher.
func (r *RedisRouter) Deliver(id directory.DeviceID, frame []byte) (string, bool) {
	if conn, ok := r.Memory.Deliver(id, frame); ok {
		return conn, true
	}
	r.mu.Lock()
	loc, ok := r.where[id]
	ok = ok && r.validLocked(loc, time.Now())
	r.mu.Unlock()
	if !ok {
		return "", false
	}
	if !r.publish(loc.node, envelope{Kind: "deliver", Devices: []directory.DeviceID{id}, Frame: frame}) {
		return "", false // dropped: the device is not rung (nor counted as ringing)
	}
	return loc.conn, true
}

// Where implements Router: the local connection, or where the view
// believes the device is.
func (r *RedisRouter) Where(id directory.DeviceID) (string, bool) {
	if conn, ok := r.Memory.Where(id); ok {
		return conn, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	loc, ok := r.where[id]
	if !ok || !r.validLocked(loc, time.Now()) {
		return "", false
	}
	return loc.conn, true
}

// forwardRetryFirst is how long Forward waits before sending again to a
// node that is alive but received nothing; it doubles after each try.
const forwardRetryFirst = 25 * time.Millisecond

// errOwnerUnreachable answers a device whose message about a call could
// not reach the node owning it, which may still be there with the call.
var errOwnerUnreachable = protoErr(CodeServiceUnavailable, "the node owning this call is unreachable; retry")

// Forward implements Router. When nothing receives on the node's channel,
// the node is gone, and its calls with it (errNoSuchCall), unless its
// alive key still lives: then it is between two subscriptions (subscribing
// again after Redis came back, or replacing a silent one), and the message
// is sent again, after forwardRetryFirst and then twice as long each time,
// until ctx ends; then the device is answered service_unavailable, to
// retry. (A node deletes its alive key as it stops: Run.)
func (r *RedisRouter) Forward(ctx context.Context, node string, call CallID, from directory.Device, conn string, frame []byte) error {
	env := envelope{Kind: "message", From: r.node, Call: call, Sender: &from, Conn: conn, Frame: frame}
	for wait := forwardRetryFirst; ; wait *= 2 {
		receivers, err := r.publishNow(ctx, node, env)
		if err != nil {
			return errOwnerUnreachable
		}
		if receivers > 0 {
			r.metrics.forwarded.WithLabelValues("message").Inc()
			return nil
		}
		ttl, err := r.rdb.PTTL(ctx, aliveKey(node)).Result()
		switch {
		case err != nil:
			r.fail("publish", err)
			return errOwnerUnreachable
		case ttl <= 0:
			return errNoSuchCall // no such node, or it is gone
		}
		if ctxsleep.Sleep(ctx, wait) != nil {
			return errOwnerUnreachable
		}
	}
}

// Left implements Router.
func (r *RedisRouter) Left(_ context.Context, node string, call CallID, d directory.DeviceID, conn string, reason EndReason) {
	r.publish(node, envelope{Kind: "left", Call: call, Devices: []directory.DeviceID{d}, Conn: conn, Reason: reason})
}

// Handover implements Router.
func (r *RedisRouter) Handover(_ context.Context, node string, d directory.DeviceID, conn string, calls []CallID) {
	r.publish(node, envelope{Kind: "handover", Devices: []directory.DeviceID{d}, Conn: conn, Calls: calls})
}

// Forgotten implements Router.
func (r *RedisRouter) Forgotten(_ context.Context, node string, call CallID, d directory.DeviceID, conn string) {
	r.publish(node, envelope{Kind: "forgotten", Call: call, Devices: []directory.DeviceID{d}, Conn: conn})
}

// Ringing implements Router. The ringing sets have their own queue and
// sender, so that registering a call never holds up its rings.
func (r *RedisRouter) Ringing(_ context.Context, t directory.Target, call CallID, on bool) {
	select {
	case r.ringQ <- queued{ringKey: ringingKey(t), member: string(call), add: on}:
	default:
		r.metrics.dropped.WithLabelValues("queue_full").Inc()
		r.log.Warn("router ringing-set queue full; a late joiner on another node may not be rung")
	}
}

// Announce implements Router: the owners of calls ringing for d's call IDs
// on other nodes are told that d connected here, and so are those of the
// calls of other nodes its connection here recorded, taken over from the
// connection it replaced on this node (rung for, or spoken about, through
// that one): a call writes its ringing sets off the ring path, and a
// device that connects again at once can look before that write.
func (r *RedisRouter) Announce(ctx context.Context, d directory.Device, targets []directory.Target) {
	c := r.Memory.Local(d.ID)
	var calls []CallID
	if c != nil {
		calls = c.remoteCallsNow() // a door station's own among them: its call never rings it (Call.ringLate)
	}
	if len(targets) > 0 {
		ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
		defer cancel()
		pipe := r.rdb.Pipeline()
		cmds := make([]*redis.StringSliceCmd, len(targets))
		for i, t := range targets {
			cmds[i] = pipe.SMembers(ctx, ringingKey(t))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			r.fail("announce", err) // the recorded calls are still announced
		}
		for _, cmd := range cmds {
			for _, call := range cmd.Val() {
				if !slices.Contains(calls, CallID(call)) {
					calls = append(calls, CallID(call))
				}
			}
		}
	}
	// The device's connection now, after the round trip: a newer one may
	// have replaced c meanwhile (it took c's calls over, and its own
	// Announce follows); a leg must name the connection that rings.
	if c = r.Memory.Local(d.ID); c == nil {
		return // gone meanwhile: no connection to ring
	}
	for _, call := range calls {
		if owner := ownerOf(call); owner != "" && owner != r.node {
			r.publish(owner, envelope{Kind: "join", Call: call, Sender: &d, Conn: c.id})
		}
	}
}

// Ready implements Router.
func (r *RedisRouter) Ready(ctx context.Context) error {
	if !r.subscribed.Load() {
		return errors.New("not yet subscribed to this node's channel")
	}
	return r.rdb.Ping(ctx).Err()
}

// fail counts and logs a Redis error.
func (r *RedisRouter) fail(op string, err error) {
	r.leasesDoubtful.Store(true)
	r.metrics.redisErrors.WithLabelValues(op).Inc()
	r.log.Debug("redis operation failed", "op", op, "err", err)
}

// publish queues an envelope for node without blocking, and reports
// whether it did (false: the queue, or what waits for node to be sent
// again, is full, and it was dropped).
func (r *RedisRouter) publish(node string, env envelope) bool {
	env.From = r.node
	if _, full := r.heldFull.Load(node); full {
		// What waits for that node already fills its held-back queue: this
		// envelope would be dropped behind it. Said now, so that a ring
		// (Deliver) counts the device as not rung.
		r.metrics.dropped.WithLabelValues("queue_full").Inc()
		return false
	}
	if !r.enqueue(queued{node: node, env: env}) {
		return false
	}
	r.metrics.forwarded.WithLabelValues(env.Kind).Inc()
	return true
}

// publishNow publishes an envelope, waits for Redis to take it, and returns
// how many subscribers (nodes) received it.
func (r *RedisRouter) publishNow(ctx context.Context, node string, env envelope) (int64, error) {
	env.From = r.node
	b, err := env.marshal()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	n, err := r.rdb.SPublish(ctx, nodeChannel(node), b).Result()
	if err != nil {
		r.fail("publish", err)
		return 0, err
	}
	return n, nil
}

func (r *RedisRouter) enqueue(q queued) bool {
	select {
	case r.out <- q:
		select {
		case r.kick <- struct{}{}:
		default: // the publisher is awake already
		}
		return true
	default:
		r.metrics.dropped.WithLabelValues("queue_full").Inc()
		r.log.Warn("router publish queue full; dropping a cross-node message")
		return false
	}
}

// StoreErrors is the counter of foyer_redis_errors_total for the
// directory's and accounts' Redis commands (op "store"): the family is the
// router's, and the server counts the stores' failures into it.
func (r *RedisRouter) StoreErrors() prometheus.Counter {
	return r.metrics.redisErrors.WithLabelValues(storeOp)
}

// String names the router in logs.
func (r *RedisRouter) String() string { return fmt.Sprintf("redis router %s", r.node) }
