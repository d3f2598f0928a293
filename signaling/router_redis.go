package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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

// envelope is what one node publishes to another. On the wire it is one
// line of JSON (every field but Frame), a newline, then Frame as is: the
// protocol frame is neither re-encoded nor re-validated on the way.
type envelope struct {
	Kind    string               `json:"k"`              // deliver | message | join | left | replaced | handover | moved | forgotten | probe
	From    string               `json:"f"`              // the sending node
	Devices []directory.DeviceID `json:"d,omitempty"`    // deliver: the target devices; left: the device gone; replaced: the device
	Conn    string               `json:"c,omitempty"`    // message, join: the sender's connection; left: the connection gone; replaced: the receiver's connection to close; handover: the receiver's connection that takes the calls; moved: the device's connection on To
	By      string               `json:"b,omitempty"`    // replaced: the sender's connection that replaced it
	To      string               `json:"n,omitempty"`    // moved: the node the device went to
	Prev    string               `json:"p,omitempty"`    // moved: the sender's connection that the device left
	Call    CallID               `json:"call,omitempty"` // message: the call its frame is about (the key that orders a call's messages); join, left, forgotten: the call
	Sender  *directory.Device    `json:"s,omitempty"`    // message, join: the device that sent or connected; moved: the device
	Targets []directory.Target   `json:"ts,omitempty"`   // moved: the call IDs the device rings for
	Sent    int64                `json:"t,omitempty"`    // probe: send time, unix ns
	Reason  EndReason            `json:"r,omitempty"`    // left: how the device's calls end
	Calls   []CallID             `json:"cs,omitempty"`   // handover: the calls
	Frame   []byte               `json:"-"`              // deliver, message: the protocol frame
}

// deliverPrefix starts the compact header of a deliver envelope, the one
// on the ring and cancel path: "D <from> <device>,<device>…". Node and
// device IDs hold only letters, digits, '_', '-' and '.', so spaces and
// commas separate them unambiguously; JSON headers start with '{'.
const deliverPrefix = "D "

// marshal encodes the envelope for PUBLISH.
func (e *envelope) marshal() ([]byte, error) {
	if e.Kind == "deliver" {
		n := len(deliverPrefix) + len(e.From) + 2 + len(e.Frame)
		for _, d := range e.Devices {
			n += len(d) + 1
		}
		out := make([]byte, 0, n)
		out = append(append(append(out, deliverPrefix...), e.From...), ' ')
		for i, d := range e.Devices {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, d...)
		}
		return append(append(out, '\n'), e.Frame...), nil
	}
	head, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(head)+1+len(e.Frame))
	out = append(append(head, '\n'), e.Frame...)
	return out, nil
}

// unmarshalEnvelope decodes what marshal encoded.
func unmarshalEnvelope(payload string) (envelope, error) {
	head, frame, _ := strings.Cut(payload, "\n")
	if rest, ok := strings.CutPrefix(head, deliverPrefix); ok {
		from, devices, ok := strings.Cut(rest, " ")
		if !ok || from == "" || devices == "" {
			return envelope{}, errors.New("malformed deliver envelope")
		}
		e := envelope{Kind: "deliver", From: from, Frame: []byte(frame)}
		for d := range strings.SplitSeq(devices, ",") {
			e.Devices = append(e.Devices, directory.DeviceID(d))
		}
		return e, nil
	}
	var e envelope
	if err := json.Unmarshal([]byte(head), &e); err != nil {
		return e, err
	}
	if frame != "" {
		e.Frame = []byte(frame)
	}
	return e, nil
}

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
}

// NewRedisRouter returns the router of node on rdb. Metrics register with reg.
func NewRedisRouter(node string, rdb redis.UniversalClient, opts RedisRouterOptions, reg prometheus.Registerer, log *slog.Logger) (*RedisRouter, error) {
	if !validNodeID(node) {
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

// Locate implements Router. While the presence view is in step, it knows
// where every device is and no round trip is needed; otherwise one
// pipelined round trip reads the leases of all ids, and a second the alive
// keys of the nodes they name. Redis is also asked when the view knows
// none of ids, rather than end the call at once as unavailable: a device
// that has just connected to another node may not be in the view yet.
// (When some are known, the call rings them, and the devices it missed are
// looked for again once the call is in the ringing sets: lookAgain.)
func (r *RedisRouter) Locate(ctx context.Context, ids []directory.DeviceID) error {
	if r.inStep() && r.knowsAny(ids) {
		return nil
	}
	start := time.Now()
	remote := make([]directory.DeviceID, 0, len(ids))
	for _, id := range ids {
		if r.Memory.Local(id) == nil {
			remote = append(remote, id)
		}
	}
	if len(remote) == 0 {
		return nil
	}
	locs, err := r.readLeases(ctx, remote)
	if err != nil {
		r.fail("locate", err)
		return err
	}
	r.metrics.rtt.Observe(time.Since(start).Seconds())
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, loc := range locs {
		r.learnLocked(remote[i], loc, start)
	}
	return nil
}

// learnLocked records where a read of Redis that began at start found id
// (loc; no node: connected nowhere else, or a stale lease of ours), unless
// the view has heard of id since the read began, from a presence event or
// a message: that is newer than what the read saw.
func (r *RedisRouter) learnLocked(id directory.DeviceID, loc location, start time.Time) {
	if old, ok := r.where[id]; ok && !old.learned.Before(start) {
		return
	}
	if loc.node == "" {
		delete(r.where, id)
	} else {
		r.where[id] = loc
	}
}

// readLeases reads from Redis where ids are connected on other nodes: their
// leases, then the alive keys of the nodes these name (two round trips).
// A location with no node: connected nowhere else.
func (r *RedisRouter) readLeases(ctx context.Context, ids []directory.DeviceID) ([]location, error) {
	start := time.Now()
	pipe := r.rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		gets[i] = pipe.Get(ctx, presenceKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	values := make([]string, len(gets))
	for i, g := range gets {
		values[i] = g.Val()
	}
	alive, err := r.aliveFor(ctx, values)
	if err != nil {
		return nil, err
	}
	locs := make([]location, len(values))
	for i, v := range values {
		locs[i] = r.leaseAt(v, alive, start)
	}
	return locs, nil
}

// knowsAny reports whether one of ids is connected here or, as far as the
// view knows, on another node.
func (r *RedisRouter) knowsAny(ids []directory.DeviceID) bool {
	for _, id := range ids {
		if r.Memory.Local(id) != nil {
			return true
		}
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if loc, ok := r.where[id]; ok && r.validLocked(loc, now) {
			return true
		}
	}
	return false
}

// otherLease splits lease ("<node> <conn>", the value of a presence key)
// when it names another node's connection; ok is false for no lease and
// for one of this node's.
func (r *RedisRouter) otherLease(lease string) (node, conn string, ok bool) {
	node, conn, ok = strings.Cut(lease, " ")
	return node, conn, ok && node != r.node
}

// aliveFor reads, in one round trip, how long the alive key of each other
// node named by the leases still lives (absent: not alive).
func (r *RedisRouter) aliveFor(ctx context.Context, leases []string) (map[string]time.Duration, error) {
	ttls := make(map[string]*redis.DurationCmd)
	pipe := r.rdb.Pipeline()
	for _, v := range leases {
		if node, _, ok := r.otherLease(v); ok && ttls[node] == nil {
			ttls[node] = pipe.PTTL(ctx, aliveKey(node))
		}
	}
	alive := make(map[string]time.Duration, len(ttls))
	if len(ttls) == 0 {
		return alive, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	for node, cmd := range ttls {
		if ttl := cmd.Val(); ttl > 0 {
			alive[node] = ttl
		}
	}
	return alive, nil
}

// leaseAt is where a lease read at time at says its device is, given how
// long each node's alive key still lived then: the device is believed
// there as long as that node's alive key lives, not a whole lease TTL from
// the read, so a dead node's last renewal is never stretched. No node: no
// lease, one of a node that is not alive, or one of this node's.
func (r *RedisRouter) leaseAt(lease string, alive map[string]time.Duration, at time.Time) location {
	node, conn, ok := r.otherLease(lease)
	if ttl := alive[node]; ok && ttl > 0 {
		return location{node: node, conn: conn, expires: at.Add(min(ttl, r.opts.LeaseTTL)), learned: at}
	}
	return location{}
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
