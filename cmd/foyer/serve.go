package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/media"
	"github.com/foyer-intercom/foyer/signaling"
	"github.com/foyer-intercom/foyer/turn"
	"github.com/foyer-intercom/foyer/web"
)

const (
	// maxHeaderBytes bounds a request's headers: tokens and cookies fit
	// many times over, a header flood does not.
	maxHeaderBytes = 64 << 10
	// shutdownTimeout bounds closing the HTTP listener after the drain.
	shutdownTimeout = 5 * time.Second
)

// serve runs the server until SIGINT or SIGTERM, then drains.
func serve(args []string, stdout, stderr io.Writer) error {
	fs, flags := commandFlags("serve", stderr, true)
	demo := fs.Bool("demo", false, "seed a demo site and print its device tokens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, unknownEnv, err := flags.load()
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	for _, k := range unknownEnv {
		log.Warn("environment variable names no configuration key; ignored", "name", k)
	}
	for _, a := range cfg.advisories() {
		log.Warn("configuration: " + a)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	b, err := openBackend(cfg)
	if err != nil {
		return err
	}
	defer b.close()
	store := b.store
	if *demo {
		if err := seedDemo(ctx, store, stdout, "http://"+displayAddrString(cfg.Listen)); err != nil {
			return fmt.Errorf("seeding the demo site: %w", err)
		}
	}

	reg, err := newRegistry()
	if err != nil {
		return err
	}
	engine, err := media.NewEngine(cfg.Media, log.With("component", "media"))
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	defer engine.Close()
	if err := reg.Register(media.NewCollector(engine)); err != nil {
		return err
	}
	sigCfg, err := hubConfig(cfg.Signaling, engine, cfg.Redis.NodeID)
	if err != nil {
		return err
	}
	side, err := openAccountSide(cfg, b, log)
	if err != nil {
		return err
	}
	if err := reg.Register(side.droppedCollector()); err != nil {
		return err
	}
	if *demo {
		base := "http://" + displayAddrString(cfg.Listen)
		if err := demoOperator(ctx, side.acc, stdout, base); err != nil {
			return fmt.Errorf("the demo operator: %w", err)
		}
		if err := demoResident(ctx, side.acc, store, stdout, base); err != nil {
			return fmt.Errorf("the demo resident: %w", err)
		}
	}
	alerts := side.hook(&sigCfg, cfg, store, log)
	if err := reg.Register(alerts.OfflineGauge()); err != nil {
		return err
	}
	jctx, stopJournal := context.WithCancel(context.Background())
	journalDone := make(chan struct{})
	go func() { side.journal.Run(jctx); close(journalDone) }()
	defer func() { stopJournal(); <-journalDone }()
	go side.acc.Maintain(jctx, store, log.With("component", "maintenance"))
	if m, ok := b.records.(partMover); ok {
		go moveToParts(jctx, m, log.With("component", "maintenance"))
	}
	router, nodeID, err := newRouter(b, sigCfg.NodeID, cfg.Redis, reg, log)
	if err != nil {
		return err
	}
	sigCfg.NodeID = nodeID
	ice, closeTURN, err := startTURN(cfg, reg, log)
	if err != nil {
		return err
	}
	defer closeTURN()
	hub, err := signaling.NewHub(sigCfg, store, router, ice, reg, log)
	if err != nil {
		return err
	}
	apiHandler, err := side.api(cfg, store, hub, reg, log)
	if err != nil {
		return err
	}
	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	hubDone := make(chan struct{})
	go func() { hub.Run(hubCtx); close(hubDone) }()
	sweepDone := make(chan struct{})
	go func() { alerts.Run(hubCtx, hub.Connected); close(sweepDone) }()
	defer func() { stopHub(); <-sweepDone }()

	var ready atomic.Bool
	mux := newMux(hub, b, router, &ready)
	if cfg.Metrics.Listen == "" {
		mux.Handle("GET /metrics", metricsHandler(reg))
	}
	mux.Handle("/v1/", apiHandler)
	stopMetrics, err := serveMetrics(cfg.Metrics, cfg.HTTP, reg, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	// No TCP keep-alive probes: WebSockets have their own heartbeat, which
	// finds a vanished peer sooner, and idle HTTP connections are closed
	// after http.idle_timeout. It saves four setsockopt calls per accepted
	// connection, which count in a reconnect storm.
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := newHTTPServer(mux, cfg.HTTP)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	ready.Store(true)
	log.Info("foyer is serving", "http", "http://"+displayAddr(ln.Addr()), "signal", "ws://"+displayAddr(ln.Addr())+"/v1/signal", "node", sigCfg.NodeID, "store", storeName(b, cfg))

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	stop() // a second signal now terminates at once
	ready.Store(false)
	log.Info("shutting down: draining calls", "deadline", cfg.DrainTimeout)
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	hub.Drain(drainCtx)
	shutCtx, cancelShut := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancelShut()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("closing the HTTP listener", "err", err)
	}
	// The hub's background work stops last; in a cluster the router then
	// tells the others this node is gone (RedisRouter.Run).
	stopHub()
	select {
	case <-hubDone:
	case <-shutCtx.Done():
		log.Warn("the hub's background work did not stop in time")
	}
	log.Info("stopped")
	return nil
}

// newMux routes the HTTP endpoints of one node.
func newMux(hub *signaling.Hub, b *backend, router signaling.Router, ready *atomic.Bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/signal", hub)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		switch {
		case !ready.Load():
			http.Error(w, "not ready: shutting down", http.StatusServiceUnavailable)
		case b.ping(ctx) != nil:
			http.Error(w, "not ready: the shared store (Redis) is unreachable", http.StatusServiceUnavailable)
		case router.Ready(ctx) != nil:
			http.Error(w, "not ready: other nodes are unreachable", http.StatusServiceUnavailable)
		default:
			_, _ = io.WriteString(w, "ready\n")
		}
	})
	mux.Handle("/", web.Handler()) // /door, /resident, /admin, /reset and their files
	return mux
}

// newRegistry returns the node's metrics registry, with the Go runtime's
// and the process's collectors and foyer_build_info.
func newRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo()} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// hubConfig is the signalling hub's configuration from the signaling
// settings, with the node's media engine and ID (empty: Redis's or none).
func hubConfig(s SignalingConfig, engine *media.Engine, node string) (signaling.Config, error) {
	proxies, err := s.trustedProxies()
	if err != nil {
		return signaling.Config{}, err
	}
	return signaling.Config{
		HelloTimeout:   s.HelloTimeout,
		Heartbeat:      s.Heartbeat,
		SendQueue:      s.SendQueue,
		RejoinWindow:   s.RejoinWindow,
		MessageRate:    s.MessageRate,
		MessageBurst:   s.MessageBurst,
		CallRate:       s.CallRate,
		CallBurst:      s.CallBurst,
		UpgradeRate:    s.UpgradeRate,
		UpgradeBurst:   s.UpgradeBurst,
		TrustedProxies: proxies,
		Media:          engine,
		NodeID:         node,
	}, nil
}

// buildInfo is foyer_build_info: 1, labelled with this binary's version
// and Go release, so that an operator can see which nodes of a cluster
// run which foyer (every node must run the same: operations.md).
func buildInfo() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "foyer_build_info",
		Help:        "Always 1; its labels name the foyer version and the Go release the node runs.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version()},
	}, func() float64 { return 1 })
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// newHTTPServer is an HTTP server of the node's, public or operator's:
// clients that do not finish their headers in time, and idle keep-alive
// connections, are closed, and a request's headers are bounded.
func newHTTPServer(h http.Handler, hc HTTPConfig) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: hc.ReadHeaderTimeout, IdleTimeout: hc.IdleTimeout, MaxHeaderBytes: maxHeaderBytes}
}

// serveMetrics serves /metrics (and, when asked, Go's profiler) on the
// metrics listener, if one is configured. The returned func closes it.
func serveMetrics(cfg MetricsConfig, hc HTTPConfig, reg *prometheus.Registry, log *slog.Logger) (func(), error) {
	if cfg.Listen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler(reg))
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := newHTTPServer(mux, hc)
	go func() { _ = srv.Serve(ln) }()
	log.Info("metrics are served", "metrics", "http://"+displayAddr(ln.Addr())+"/metrics", "pprof", cfg.Pprof)
	return func() { _ = srv.Close() }, nil
}

// newRouter picks the router: memory on one node, Redis in a cluster. It
// returns the node ID in use (random when not configured).
func newRouter(b *backend, nodeID string, rc RedisConfig, reg prometheus.Registerer, log *slog.Logger) (signaling.Router, string, error) {
	if b.rdb == nil {
		return signaling.NewMemory(), nodeID, nil
	}
	if nodeID == "" {
		nodeID = randomNodeID()
	}
	r, err := signaling.NewRedisRouter(nodeID, b.rdb, signaling.RedisRouterOptions{LeaseTTL: rc.LeaseTTL}, reg, log)
	if err != nil {
		return nil, nodeID, err
	}
	b.storeErrs.countInto(r.StoreErrors())
	return r, nodeID, nil
}

// randomNodeID names a node that was given no name: 8 hex digits.
func randomNodeID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated with the configuration
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// displayAddr turns ":8080"-style listen addresses into something a person can click.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// storeName says which store the node runs on, for the start-up log.
func storeName(b *backend, cfg Config) string {
	if b.rdb != nil {
		return "redis"
	}
	return "bbolt:" + cfg.DataDir
}

// startTURN starts the embedded TURN server when enabled and returns the
// ICE servers each device's welcome carries (nil without TURN).
func startTURN(cfg Config, reg prometheus.Registerer, log *slog.Logger) (signaling.ICEProvider, func(), error) {
	if !cfg.TURN.Enabled {
		return nil, func() {}, nil
	}
	secret := cfg.TURN.Secret
	if secret == "" {
		if cfg.Redis.URL != "" || len(cfg.Redis.ClusterAddrs) > 0 {
			return nil, nil, errors.New("turn.secret must be set (the same on every node) when nodes share Redis")
		}
		var err error
		if secret, err = turn.LoadOrCreateSecret(cfg.DataDir); err != nil {
			return nil, nil, err
		}
	}
	ts, err := turn.New(cfg.TURN, secret, log.With("component", "turn"))
	if err != nil {
		return nil, nil, err
	}
	if err := reg.Register(turn.NewCollector(ts)); err != nil {
		_ = ts.Close()
		return nil, nil, err
	}
	if len(cfg.TURN.AllowPeers) == 0 {
		log.Warn("turn: allow_peers is empty, so relays reach no peer; list this deployment's media addresses there")
	}
	ice := func(d directory.Device) []signaling.ICEServer {
		urls, user, cred := ts.ICEServer(string(d.ID), time.Now())
		return []signaling.ICEServer{{URLs: urls, Username: user, Credential: cred}}
	}
	return ice, func() { _ = ts.Close() }, nil
}

// displayAddrString is displayAddr for a configured listen address.
func displayAddrString(listen string) string {
	a, err := net.ResolveTCPAddr("tcp", listen)
	if err != nil {
		return listen
	}
	return displayAddr(a)
}
