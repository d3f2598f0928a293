package signaling

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/ctxsleep"
	"github.com/foyer-intercom/foyer/media"
)

// Config tunes the signalling server. The zero value of each field means its default.
type Config struct {
	// HelloTimeout closes connections that send no hello in time, and
	// bounds the store's reads that answer a hello. Default 10 s (protocol v1).
	HelloTimeout time.Duration
	// Heartbeat is the ping interval (welcome.heartbeat_s); a peer silent
	// for two intervals is dropped. Default 20 s.
	Heartbeat time.Duration
	// SendQueue is the per-connection outbound queue length; a client that
	// lets it fill is closed as slow. Default 64 (defaultSendQueue).
	SendQueue int
	// RejoinWindow is how long an answered call waits, once the connection
	// of the device that answered or of the door station closes, for it to
	// speak about the call again through another connection (after a phone
	// changed networks, say) before the call ends. Default 10 s.
	RejoinWindow time.Duration
	// RequestTimeout bounds the directory and cluster look-ups of one
	// message after hello, so that a call fails within a second, with a
	// retryable error, when Redis is away. Default 800 ms.
	RequestTimeout time.Duration
	// DirectoryDelay coalesces directory changes before pushing them to
	// door stations (the protocol promises within one second). Default 100 ms.
	DirectoryDelay time.Duration
	// MessageRate and MessageBurst bound what one connection may send
	// (messages per second, and the burst above it); beyond them messages
	// are answered rate_limited and not processed. Default 20/s, burst 60.
	MessageRate  float64
	MessageBurst int
	// CallRate and CallBurst bound the calls one door station may place.
	// Default one every 2 s, burst 5.
	CallRate  float64
	CallBurst int
	// UpgradeRate and UpgradeBurst bound the connections one client address
	// (an IPv6 /64) may open per second; beyond them the upgrade is
	// answered 429 with Retry-After. Zero: no limit.
	UpgradeRate  float64
	UpgradeBurst int
	// TrustedProxies are reverse proxies whose X-Forwarded-For names the
	// client for UpgradeRate. Default none: the peer address counts.
	TrustedProxies []netip.Prefix
	// NodeID names this node in call IDs and logs. Default: random.
	NodeID string
	// Clock drives call timers. Default: the wall clock.
	Clock Clock
	// Media terminates calls' audio and video on this node. Nil: no media
	// (sdp and candidate messages are answered service_unavailable).
	Media *media.Engine
	// Keypad checks a code typed on a door station's keypad (the pin
	// message). Nil: every code is wrong.
	Keypad func(ctx context.Context, door directory.Device, code string) (KeypadResult, error)
	// OnCallEnded receives the record of every call this node owned, for
	// the site's call log. It is called with the call's lock held: it must
	// only queue. Nil: no records.
	OnCallEnded func(CallRecord)
	// OnDoorOpened receives every door opening from a call, like OnCallEnded.
	OnDoorOpened func(DoorRecord)
	// OnDoorOnline is told of every door station connecting to this node,
	// on a goroutine of its own; OnDoorGone of one whose connection to this
	// node closed (at), unless it is connected again already (a newer
	// connection replaced it) or this node is draining, before the close
	// is logged: it must not block. Nil: not told.
	OnDoorOnline func(door directory.Device)
	OnDoorGone   func(door directory.Device, at time.Time)
}

// KeypadResult is the answer to a keypad code.
type KeypadResult struct {
	// Open: the code opens this door now.
	Open bool
	// LockedFor: the keypad refuses codes for this long (too many wrong ones).
	LockedFor time.Duration
}

// CallRecord is what the call log keeps of one call.
type CallRecord struct {
	CallID  CallID
	Site    directory.SiteID
	Door    directory.DeviceID
	Number  directory.Number
	Started time.Time
	Rung    []directory.DeviceID
	// People the call was for: the owners of its call ID's app devices,
	// rung or found connected nowhere (their missed calls, too). Declined
	// names those of them a device of whom declined. Both sorted, once each.
	People, Declined []directory.UserID
	Answered         directory.Device // zero when nobody answered
	// AnsweredAfter is ring time until the answer; Talk the answered time.
	AnsweredAfter, Talk time.Duration
	Reason              EndReason
	DoorOpened          bool
}

// DoorRecord is one door opening from a call.
type DoorRecord struct {
	CallID CallID
	Site   directory.SiteID
	Door   directory.DeviceID
	By     directory.Device
	Relay  int
	At     time.Time
}

// defaultSendQueue holds a burst of rings, cancels and media negotiation
// for one device many times over (a call is about a dozen frames); every
// slot costs 24 bytes per idle connection, so it is not larger.
const defaultSendQueue = 64

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.HelloTimeout == 0 {
		cfg.HelloTimeout = 10 * time.Second
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 20 * time.Second
	}
	if cfg.SendQueue == 0 {
		cfg.SendQueue = defaultSendQueue
	}
	if cfg.RejoinWindow == 0 {
		cfg.RejoinWindow = 10 * time.Second
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 800 * time.Millisecond
	}
	if cfg.DirectoryDelay == 0 {
		cfg.DirectoryDelay = 100 * time.Millisecond
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.MessageRate == 0 {
		cfg.MessageRate, cfg.MessageBurst = 20, 60
	}
	if cfg.CallRate == 0 {
		cfg.CallRate, cfg.CallBurst = 0.5, 5
	}
	if cfg.NodeID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.NodeID = hex.EncodeToString(b)
	}
	return cfg
}

// Validate reports settings outside their sane ranges.
func (cfg Config) Validate() error {
	c := cfg.withDefaults()
	switch {
	case c.HelloTimeout < 0 || c.Heartbeat < time.Second:
		return errors.New("signaling: hello timeout must be positive and heartbeat at least 1s")
	case c.MessageRate < 0 || c.MessageBurst < 1 || c.CallRate < 0 || c.CallBurst < 1:
		return errors.New("signaling: message and call rates must be positive with a burst of at least 1")
	case c.SendQueue < 8:
		return errors.New("signaling: send queue must hold at least 8 messages")
	case c.UpgradeRate < 0 || (c.UpgradeRate > 0 && c.UpgradeBurst < 1):
		return errors.New("signaling: the upgrade rate must not be negative, and needs a burst of at least 1")
	case !ValidNodeID(c.NodeID):
		return errors.New("signaling: node ID must be 1-32 characters of a-z, 0-9 and -")
	case c.RejoinWindow < 0 || c.RejoinWindow > 2*time.Minute:
		return errors.New("signaling: the rejoin window must be at most 2m (0: the default, 10s)")
	case c.DirectoryDelay > time.Second:
		return errors.New("signaling: directory delay must be at most 1s (door stations are promised changes within a second)")
	}
	return nil
}

// ICEProvider returns the ICE servers (with credentials) for a device's welcome.
type ICEProvider func(d directory.Device) []ICEServer

// Hub is the signalling server of one node: it accepts connections on
// /v1/signal, runs the calls this node owns, and pushes directory changes.
type Hub struct {
	// Immutable after construction.
	cfg      Config
	clock    Clock
	store    directory.Store
	router   Router
	ice      ICEProvider
	log      *slog.Logger
	metrics  *metrics
	upgrader websocket.Upgrader
	resume   *resumeTokens
	upgrades *ipLimiter // nil: no per-address limit

	mu         sync.Mutex                                // never held across I/O; taken after a Call's mu, never before
	calls      map[CallID]*Call                          // guarded by mu; calls not ended
	endedCalls map[CallID]endedCall                      // guarded by mu; what is kept of calls ended within endedLinger
	endedQ     []endedAt                                 // guarded by mu; the same calls, oldest first; a timer runs forgetEnded while it has any
	doorCalls  map[directory.DeviceID]*Call              // guarded by mu; a door station's current call
	winners    map[directory.DeviceID]map[*Call]struct{} // guarded by mu; answered calls by winner
	ringIndex  map[directory.Target]map[*Call]struct{}   // guarded by mu; ringing calls by (site, number)
	draining   bool                                      // guarded by mu
	idle       chan struct{}                             // guarded by mu; closed when draining and no calls remain

	dirtyMu      sync.Mutex
	dirtySites   map[directory.SiteID]struct{}   // guarded by dirtyMu
	dirtyDevices map[directory.DeviceID]struct{} // guarded by dirtyMu
	dirtyUsers   map[directory.UserID]struct{}   // guarded by dirtyMu
	kick         chan struct{}                   // wakes pushLoop; capacity 1
	wg           sync.WaitGroup                  // connections being served
	mediaWG      sync.WaitGroup                  // media sessions closing
}

// NewHub returns a hub serving devices from store, reaching them through
// router. ice may be nil (no ICE servers). Metrics register with reg.
func NewHub(cfg Config, store directory.Store, router Router, ice ICEProvider, reg prometheus.Registerer, log *slog.Logger) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if ice == nil {
		ice = func(directory.Device) []ICEServer { return nil }
	}
	h := &Hub{
		cfg:          cfg.withDefaults(),
		clock:        cfg.withDefaults().Clock,
		store:        store,
		router:       router,
		ice:          ice,
		log:          log,
		resume:       newResumeTokens(),
		calls:        make(map[CallID]*Call),
		endedCalls:   make(map[CallID]endedCall),
		doorCalls:    make(map[directory.DeviceID]*Call),
		winners:      make(map[directory.DeviceID]map[*Call]struct{}),
		ringIndex:    make(map[directory.Target]map[*Call]struct{}),
		dirtySites:   make(map[directory.SiteID]struct{}),
		dirtyDevices: make(map[directory.DeviceID]struct{}),
		dirtyUsers:   make(map[directory.UserID]struct{}),
		kick:         make(chan struct{}, 1),
	}
	m, err := newMetrics(reg, h)
	if err != nil {
		return nil, err
	}
	h.metrics = m
	if h.cfg.UpgradeRate > 0 {
		h.upgrades = newIPLimiter(h.cfg.UpgradeRate, max(h.cfg.UpgradeBurst, 1), h.cfg.TrustedProxies)
	}
	h.upgrader = websocket.Upgrader{
		// 0: use the hijacked connection's reader, which ownReader makes
		// a readBufferSize one the Conn can see into.
		ReadBufferSize:  0,
		WriteBufferSize: 1024,
		// Borrow write buffers only while writing: most connections are idle.
		WriteBufferPool: &sync.Pool{},
		// Devices authenticate with tokens in the first message, not
		// cookies, so a cross-origin page gains nothing: allow any origin.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return h, nil
}

// Run pushes directory changes, re-checks changed devices and runs the
// router's background work until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	cancel := h.store.Subscribe(h.onChange)
	defer cancel()
	routed := make(chan struct{})
	go func() {
		h.router.Run(ctx, h)
		close(routed)
	}()
	defer func() { <-routed }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
		}
		if ctxsleep.Sleep(ctx, h.cfg.DirectoryDelay) != nil { // coalesce a burst of changes
			return
		}
		h.dirtyMu.Lock()
		sites, devices, users := h.dirtySites, h.dirtyDevices, h.dirtyUsers
		h.dirtySites, h.dirtyDevices = make(map[directory.SiteID]struct{}), make(map[directory.DeviceID]struct{})
		h.dirtyUsers = make(map[directory.UserID]struct{})
		h.dirtyMu.Unlock()
		h.applyChanges(ctx, sites, devices)
		h.applyUserChanges(ctx, users)
	}
}

func (h *Hub) onChange(ch directory.Change) {
	h.dirtyMu.Lock()
	if ch.Site != "" {
		h.dirtySites[ch.Site] = struct{}{}
	}
	if ch.Device != "" {
		h.dirtyDevices[ch.Device] = struct{}{}
	}
	if ch.User != "" {
		h.dirtyUsers[ch.User] = struct{}{}
	}
	h.dirtyMu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// applyChanges re-authenticates changed devices and pushes fresh
// directories to the door stations of changed sites.
func (h *Hub) applyChanges(ctx context.Context, sites map[directory.SiteID]struct{}, devices map[directory.DeviceID]struct{}) {
	for id := range devices {
		if c := h.router.Local(id); c != nil {
			h.recheck(ctx, c)
		}
	}
	if len(sites) == 0 {
		return
	}
	h.router.Each(func(c *Conn) {
		if c.device.Kind != directory.KindDoorStation {
			return
		}
		for _, s := range c.sites {
			if _, ok := sites[s]; ok {
				h.pushDirectory(ctx, c)
				return
			}
		}
	})
}

// applyUserChanges asks the app connections of users whose memberships
// changed to reconnect (CloseReconfigured) when what they ring for or the
// sites they see changed: the welcome after reconnecting carries the new
// site_ids, and the device rings for its new call IDs at once.
func (h *Hub) applyUserChanges(ctx context.Context, users map[directory.UserID]struct{}) {
	if len(users) == 0 {
		return
	}
	var stale []*Conn
	h.router.Each(func(c *Conn) {
		if _, ok := users[c.device.User]; ok && c.device.Kind == directory.KindApp {
			stale = append(stale, c)
		}
	})
	for _, c := range stale {
		rctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
		targets, err := h.store.Targets(rctx, c.device)
		cancel()
		if err != nil && !errors.Is(err, directory.ErrNotFound) {
			c.logger().Warn("re-reading memberships failed", "err", err)
			continue
		}
		if !sameTargets(targets, c.targets) {
			c.logger().Info("memberships changed; asking the app to reconnect")
			c.close(CloseReconfigured, EndFailed)
		}
	}
}

// sameTargets compares two target lists as sets.
func sameTargets(a, b []directory.Target) bool {
	order := func(x, y directory.Target) int {
		return cmp.Or(cmp.Compare(x.Site, y.Site), cmp.Compare(x.Number, y.Number))
	}
	a, b = slices.SortedFunc(slices.Values(a), order), slices.SortedFunc(slices.Values(b), order)
	return slices.Equal(a, b)
}

// recheck closes a connection whose device was deleted, whose token was
// replaced, or whose settings changed.
func (h *Hub) recheck(ctx context.Context, c *Conn) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
	defer cancel()
	d, err := h.store.DeviceByToken(ctx, c.token)
	switch {
	case errors.Is(err, directory.ErrNotFound) || (err == nil && d.ID != c.device.ID):
		c.logger().Info("closing revoked device")
		c.close(CloseRevoked, EndFailed)
	case err != nil:
		c.logger().Warn("re-checking device failed", "err", err)
	case !sameDevice(d, c.device):
		c.logger().Info("device reconfigured; asking it to reconnect")
		c.close(CloseReconfigured, EndFailed)
	}
}

func sameDevice(a, b directory.Device) bool {
	if a.ID != b.ID || a.Kind != b.Kind || a.Name != b.Name || a.Site != b.Site || a.Number != b.Number || a.User != b.User || len(a.CallSites) != len(b.CallSites) {
		return false
	}
	for i := range a.CallSites {
		if a.CallSites[i] != b.CallSites[i] {
			return false
		}
	}
	return true
}

// pushDirectory sends a door station the names it shows.
func (h *Hub) pushDirectory(ctx context.Context, c *Conn) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
	defer cancel()
	push := DirectoryPush{Type: TypeDirectory, Entries: []DirectoryEntry{}}
	for _, s := range c.sites {
		entries, err := h.store.DoorDirectory(ctx, s)
		if err != nil {
			c.logger().Warn("reading the directory failed", "site_id", s, "err", err)
			return // the next change or reconnect pushes again; never push a partial list
		}
		for _, e := range entries {
			push.Entries = append(push.Entries, DirectoryEntry{CallID: e.Number, Name: e.Name, SiteID: e.Site})
		}
	}
	c.reply(push)
}

// randomID returns n random bytes, base64url-encoded.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newCallID names a call after the node that owns it, so that other nodes
// can route a device's answer to the owner: c_<node>_<random>.
func (h *Hub) newCallID() CallID { return newCallIDAt(h.cfg.NodeID) }

// newCallIDAt names a new call owned by node.
func newCallIDAt(node string) CallID {
	return CallID(fmt.Sprintf("c_%s_%s", node, randomID(12)))
}

// ownerOf returns the node named in a call ID, or "" if it names none.
func ownerOf(id CallID) string {
	rest, ok := strings.CutPrefix(string(id), "c_")
	if !ok {
		return ""
	}
	node, _, ok := strings.Cut(rest, "_")
	if !ok {
		return ""
	}
	return node
}

// ValidNodeID reports whether id may name a node (redis.node_id): 1 to 32
// characters of a-z, 0-9 and -. It is part of every call ID, Redis key and
// channel name the node owns.
func ValidNodeID(id string) bool {
	if len(id) < 1 || len(id) > 32 {
		return false
	}
	for _, r := range id {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}
