package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	// maxSocketsPerWorker keeps a worker well under the 20,000 open files
	// a process may hold here, with room for its pipes and binaries.
	maxSocketsPerWorker = 9000
	// maxSourceIPs is how many of 127.0.0.2–127.0.0.254 carry connections;
	// each has its own ~28,000 ephemeral ports towards the server.
	maxSourceIPs = 253
	// minStormIDs keeps low rates from cycling through so few IDs that a
	// slow cycle makes the next call find its ID still busy.
	minStormIDs = 50
	// doorsPerCallPerSecond: a door station may place 0.5 calls/s by
	// default (signaling.call_rate), so a rate of r needs 2r doors; 3r leaves slack.
	doorsPerCallPerSecond = 3
)

// errHelp is returned after --help printed the usage.
var errHelp = errors.New("help")

// options are the command line, checked.
type options struct {
	scenario    string
	signalURL   string   // --url as given: one node's endpoint, or several, comma-separated
	metricsURL  string   // --metrics as given
	signalURLs  []string // the nodes' signalling endpoints, checked
	metricsURLs []string // the nodes' /metrics, checked; none: do not scrape

	tokensPath    string
	foyerBin      string
	dataDir       string
	configPath    string
	provisionPath string
	tokensOut     string
	seedOnly      bool

	devices, doors  int             // ringable devices (a multiple of 7) and door stations
	given           map[string]bool // the flags given on the command line, by name
	idsPerSite      int
	rate            float64
	duration        time.Duration
	calls           int
	answer          int
	cycleTimeout    time.Duration
	hold, settle    time.Duration
	preview         time.Duration
	videoPPS        int
	videoBytes      int
	perWorker       int
	workers         int
	sourceIPs       int
	dialConcurrency int
	dialTimeout     time.Duration
	resume          bool
	client          string // lean or gorilla, after check
	timeout         time.Duration
	jsonPath        string
	logLevel        slog.Level
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("foyer-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.scenario, "scenario", "idle", "idle | storm | reconnect | media")
	fs.StringVar(&o.signalURL, "url", "ws://127.0.0.1:8080/v1/signal", "the server's signalling endpoint, or several nodes' comma-separated (loopback only)")
	fs.StringVar(&o.metricsURL, "metrics", "http://127.0.0.1:8080/metrics", "the server's /metrics, or every node's comma-separated (loopback only; empty: do not scrape)")
	fs.StringVar(&o.tokensPath, "tokens", "", "the `file` of tokens foyer seed printed, for a server already seeded by foyer-load")
	fs.StringVar(&o.foyerBin, "foyer", "", "the foyer `binary` to seed with (foyer seed), when no --tokens")
	fs.StringVar(&o.dataDir, "data-dir", "", "the data `dir` passed to foyer seed --data-dir")
	fs.StringVar(&o.configPath, "config", "", "the config `file` passed to foyer seed --config")
	fs.StringVar(&o.provisionPath, "provision-out", "", "where to write the provisioning file (default: a temporary file)")
	fs.StringVar(&o.tokensOut, "tokens-out", "", "the `file` to save the tokens foyer seed printed in, for --tokens later")
	fs.BoolVar(&o.seedOnly, "seed-only", false, "write the provisioning file, seed, save --tokens-out and exit (bbolt: seed before serve)")
	fs.IntVar(&o.devices, "devices", 0, "ringable devices (6 apps + 1 monitor per ID; rounded up to a multiple of 7); 0: 1000, or 7 per call/s for storm")
	fs.IntVar(&o.doors, "doors", 0, "door stations; 0: none for idle and reconnect, 3 per call/s for storm")
	fs.IntVar(&o.idsPerSite, "ids-per-site", 100, "call IDs per generated site (a site's sockets must fit one worker)")
	fs.Float64Var(&o.rate, "rate", 50, "storm: calls per second; media: calls placed per second, 10 unless given")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "storm: how long to place calls")
	fs.IntVar(&o.calls, "calls", 0, "storm: number of calls (overrides --duration); media: calls held at once (default 10)")
	fs.IntVar(&o.answer, "answer", 1, "storm: how many of an ID's 7 devices answer, at the same instant (1–7)")
	fs.DurationVar(&o.cycleTimeout, "cycle-timeout", 10*time.Second, "storm: a call not through its whole cycle in this time is an error")
	fs.DurationVar(&o.hold, "hold", 30*time.Second, "idle: hold the connections this long while measuring CPU (heartbeats are every 20 s); media: talk this long after the answer, 10s unless given")
	fs.DurationVar(&o.preview, "preview", 2*time.Second, "media: ring with the video preview this long before one device answers")
	fs.IntVar(&o.videoPPS, "video-pps", 100, "media: door video packets per second (a key frame every second)")
	fs.IntVar(&o.videoBytes, "video-bytes", 1000, "media: door video packet payload size")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "idle, reconnect: pause after connecting before measuring; reconnect: also how long (5s at least) to wait for the server to count every device back")
	fs.IntVar(&o.perWorker, "per-worker", maxSocketsPerWorker, "most sockets one worker process holds")
	fs.IntVar(&o.workers, "workers", 0, "worker processes (0: as many as --per-worker needs)")
	fs.IntVar(&o.sourceIPs, "source-ips", maxSourceIPs, "how many source addresses 127.0.0.2… to spread connections over")
	fs.IntVar(&o.dialConcurrency, "dial-concurrency", 200, "connections each worker opens at once")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", 10*time.Second, "bound on one connect + hello + welcome")
	fs.StringVar(&o.client, "client", "auto", "how the tool holds its connections: lean (an event loop on raw sockets, Linux only, for idle and reconnect), gorilla (the WebSocket library, a goroutine each; storm and media need it), or auto (lean for reconnect on Linux)")
	fs.BoolVar(&o.resume, "resume", false, "reconnect: use the resume_token of the last welcome instead of the device token")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "stop everything after this long")
	fs.StringVar(&o.jsonPath, "json", "", "also write the report as JSON to this file")
	logLevel := fs.String("log-level", "info", "debug | info | warn | error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	}
	o.given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.given[f.Name] = true })
	if err := o.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return o, o.check()
}

// check validates the options and fills the scenario defaults.
func (o *options) check() error {
	switch o.scenario {
	case "idle", "storm", "reconnect", "media":
	default:
		return fmt.Errorf("--scenario %q: want idle, storm, reconnect or media", o.scenario)
	}
	var err error
	if o.signalURLs, err = loopbackURLs(o.signalURL, "ws"); err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	if len(o.signalURLs) == 0 {
		return errors.New("--url: give the signalling endpoint of at least one node")
	}
	if o.metricsURLs, err = loopbackURLs(o.metricsURL, "http"); err != nil {
		return fmt.Errorf("--metrics: %w", err)
	}
	if o.tokensPath == "" && o.foyerBin == "" {
		return errors.New("give --tokens FILE, or --foyer BIN (with --data-dir or --config) to seed")
	}
	switch {
	case o.answer < 1 || o.answer > idSize:
		return fmt.Errorf("--answer %d: want 1 to %d", o.answer, idSize)
	case o.rate <= 0:
		return errors.New("--rate must be positive")
	case o.perWorker < 1 || o.perWorker > maxSocketsPerWorker:
		return fmt.Errorf("--per-worker %d: want 1 to %d", o.perWorker, maxSocketsPerWorker)
	case o.sourceIPs < 1 || o.sourceIPs > maxSourceIPs:
		return fmt.Errorf("--source-ips %d: want 1 to %d", o.sourceIPs, maxSourceIPs)
	case o.idsPerSite < 1 || o.idsPerSite > maxIDsPerSite:
		return fmt.Errorf("--ids-per-site %d: want 1 to %d", o.idsPerSite, maxIDsPerSite)
	case o.dialConcurrency < 1:
		return errors.New("--dial-concurrency must be positive")
	case o.devices < 0 || o.doors < 0 || o.calls < 0 || o.workers < 0:
		return errors.New("counts must not be negative")
	case o.videoPPS < 1 || o.videoPPS > 1000:
		return fmt.Errorf("--video-pps %d: want 1 to 1000", o.videoPPS)
	case o.videoBytes < payloadHeader || o.videoBytes > 1200:
		return fmt.Errorf("--video-bytes %d: want %d to 1200 (one packet within the path MTU)", o.videoBytes, payloadHeader)
	case o.preview < 0 || o.hold < 0:
		return errors.New("--preview and --hold must not be negative")
	case o.scenario == "storm" && o.duration <= 0 && o.calls == 0:
		return errors.New("--duration must be positive (or give --calls)")
	case o.cycleTimeout <= 0 || o.dialTimeout <= 0:
		return errors.New("--cycle-timeout and --dial-timeout must be positive")
	}
	// The lean client can hold the devices of idle and reconnect; auto
	// takes it for reconnect, where the tool's own CPU decides how soon
	// the devices are back, and keeps idle's figures comparable with
	// those measured before it (docs/benchmarks.md).
	lean := o.scenario == "idle" || o.scenario == "reconnect"
	switch o.client {
	case "auto":
		o.client = "gorilla"
		if o.scenario == "reconnect" && leanAvailable {
			o.client = "lean"
		}
	case "lean":
		if !lean {
			return fmt.Errorf("--client lean: %s needs the library client (gorilla)", o.scenario)
		}
	case "gorilla":
	default:
		return fmt.Errorf("--client %q: want lean, gorilla or auto", o.client)
	}
	if o.scenario == "media" {
		if !o.given["calls"] {
			o.calls = 10
		}
		if !o.given["rate"] {
			o.rate = 10
		}
		if !o.given["hold"] {
			o.hold = 10 * time.Second
		}
		if o.calls == 0 {
			return errors.New("media needs --calls")
		}
		if !o.given["devices"] {
			o.devices = idSize * o.calls
		}
		if !o.given["doors"] {
			o.doors = o.calls
		}
	}
	if o.scenario == "storm" && o.calls == 0 {
		o.calls = int(math.Round(o.rate * o.duration.Seconds()))
	}
	if !o.given["devices"] {
		o.devices = 1000
		if o.scenario == "storm" {
			o.devices = idSize * max(minStormIDs, int(math.Ceil(o.rate)))
		}
	}
	o.devices = (o.devices + idSize - 1) / idSize * idSize
	if !o.given["doors"] && o.scenario == "storm" {
		o.doors = max(10, int(math.Ceil(doorsPerCallPerSecond*o.rate)))
	}
	if (o.scenario == "storm" || o.scenario == "media") && o.doors == 0 {
		return fmt.Errorf("%s needs door stations (--doors)", o.scenario)
	}
	return nil
}

// loopbackURLs splits a comma-separated list of URLs and checks each with
// loopbackURL; an empty list is none. The same node twice is refused: it
// would count its metrics twice.
func loopbackURLs(list, scheme string) ([]string, error) {
	var urls []string
	for _, u := range strings.Split(list, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if err := loopbackURL(u, scheme); err != nil {
			return nil, err
		}
		if slices.Contains(urls, u) {
			return nil, fmt.Errorf("%q is given twice", u)
		}
		urls = append(urls, u)
	}
	return urls, nil
}

// loopbackURL refuses any address outside 127.0.0.0/8: this tool sends
// traffic to this machine only.
func loopbackURL(raw, scheme string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != scheme {
		return fmt.Errorf("%q: want a %s:// URL", raw, scheme)
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: only 127.0.0.0/8 addresses are allowed", raw)
	}
	return nil
}

const usageText = `foyer-load: load generator for a foyer server (loopback only).

Seed a building and keep its tokens (the embedded store: before serve):
  foyer-load --foyer bin/foyer --data-dir /tmp/foyer --devices 5000 --doors 600 \
             --tokens-out /tmp/tokens.json --seed-only
Then, with the server running (foyer serve --data-dir /tmp/foyer):
  foyer-load --tokens /tmp/tokens.json --scenario idle --devices 5000
  foyer-load --tokens /tmp/tokens.json --scenario storm --rate 200 --duration 20s --answer 7
  foyer-load --tokens /tmp/tokens.json --scenario reconnect --devices 5000
  foyer-load --tokens /tmp/tokens.json --scenario media --calls 20
Several nodes sharing Redis (seed with --config naming the Redis; the nodes are taken in
turn for the connections, so an ID's devices sit on all of them and calls cross nodes;
the nodes' metrics are added up):
  foyer-load --tokens /tmp/tokens.json --scenario storm --rate 200 \
             --url ws://127.0.0.1:8081/v1/signal,ws://127.0.0.1:8082/v1/signal \
             --metrics http://127.0.0.1:8081/metrics,http://127.0.0.1:8082/metrics

Scenarios:
  idle       connect the devices, hold them; server memory and CPU per idle connection
             (process_resident_memory_bytes, process_cpu_seconds_total from --metrics)
  storm      calls at --rate from door stations to IDs of 7 devices; --answer of them
             answer at once: call -> last ring, answer -> last cancel, cycles/s, errors
  reconnect  connect the devices, drop them all at once, reconnect: time until all are back
  media      --calls calls held at once, each from its own door station to its own ID,
             with real WebRTC peers (Pion) and synthetic RTP: video preview on all 7
             ringing devices, one answers after --preview, talk both ways for --hold,
             hangup: preview and audio latency, packet loss by stream, the losers'
             media closed, server CPU per forwarded packet

The devices of reconnect are held by the lean client (--client auto; idle takes it with
--client lean): one event loop per worker on raw non-blocking sockets, which only
connects, says hello, answers pings and stays, at about a third of the system calls of a
WebSocket library's connection and no goroutine, so that the tool takes less of the cores
it shares with the server. --client gorilla holds them with the library, as storm and
media always do.

Flags:
`
