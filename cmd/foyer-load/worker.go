package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

const (
	// dialAttempts is how often one connection is tried before it counts
	// as failed; every failed attempt is reported by class.
	dialAttempts = 3
	// dialBackoff is the pause before the second attempt, doubled after.
	dialBackoff = 250 * time.Millisecond
	// workerIDEnv names a worker in its logs.
	workerIDEnv = "FOYER_LOAD_WORKER"
)

// worker holds one shard's connections and runs the coordinator's commands.
type worker struct {
	log     *slog.Logger
	conc    int
	timeout time.Duration
	clients []*client // every connection: the IDs' devices, then the doors
	shard   *shard
	// lean holds the connections instead of clients' library connections
	// when the coordinator asked for the lean client (lean_linux.go).
	lean *leanFleet
}

// runWorker serves commands from stdin until close or EOF (the coordinator
// went away) and returns the exit code.
func runWorker(stdin io.Reader, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("worker", os.Getenv(workerIDEnv))
	w := &worker{log: log}
	dec := json.NewDecoder(stdin)
	enc := json.NewEncoder(stdout)
	for {
		var cmd command
		if err := dec.Decode(&cmd); err != nil {
			if !errors.Is(err, io.EOF) {
				log.Error("reading a command", "err", err)
			}
			w.dropAll()
			return 0
		}
		rep := w.do(cmd)
		rep.Op = cmd.Op
		if err := enc.Encode(rep); err != nil {
			log.Error("writing a reply", "err", err)
			w.dropAll()
			return 1
		}
		if cmd.Op == opClose {
			return 0
		}
	}
}

// do runs one command.
func (w *worker) do(cmd command) reply {
	ctx := context.Background()
	switch cmd.Op {
	case opConnect:
		if cmd.Shard == nil || len(cmd.URLs) == 0 || w.clients != nil {
			return reply{Err: "connect needs a shard and the nodes' URLs, once"}
		}
		w.setup(cmd)
		var res connectResults
		if cmd.Lean {
			fleet, err := newLeanFleet(w.clients, w.conc, w.timeout)
			if err != nil {
				return reply{Err: err.Error()}
			}
			w.lean = fleet
			res = fleet.connectAll(false, time.Time{})
		} else {
			res = w.connectAll(ctx, w.clients, false, time.Time{})
		}
		return reply{Connect: &connectResult{
			Wanted: len(w.clients), Connected: len(res.took), Errors: res.errors,
			HandshakeNS: res.took, StartUnixNS: res.start.UnixNano(), EndUnixNS: res.end.UnixNano(),
		}}
	case opStorm:
		if w.lean != nil {
			return reply{Err: "storms need the library client (--client gorilla)"}
		}
		if cmd.Storm == nil {
			return reply{Err: "storm needs its job"}
		}
		return reply{Storm: runStorm(ctx, w, *cmd.Storm), Lost: w.lostCounts()}
	case opMedia:
		if w.lean != nil {
			return reply{Err: "media calls need the library client (--client gorilla)"}
		}
		if cmd.Media == nil {
			return reply{Err: "media needs its job"}
		}
		res, err := runMedia(ctx, w, *cmd.Media)
		if err != nil {
			return reply{Err: err.Error()}
		}
		return reply{Media: res, Lost: w.lostCounts()}
	case opReconnect:
		return reply{Reconnect: w.reconnect(ctx, cmd.Resume)}
	case opStatus:
		return reply{Lost: w.lostCounts()}
	case opClose:
		w.dropAll()
		return reply{}
	}
	return reply{Err: fmt.Sprintf("unknown op %q", cmd.Op)}
}

// setup creates the shard's clients, each with its source address and its
// node: the nodes in turn, so that an ID's 7 devices and a site's door
// stations are spread over all of them and calls cross between nodes.
func (w *worker) setup(cmd command) {
	w.shard, w.conc = cmd.Shard, max(1, cmd.DialConcurrency)
	w.timeout = time.Duration(cmd.DialTimeoutMS) * time.Millisecond
	add := func(d device, site int, g *idGroup) *client {
		n := len(w.clients)
		c := &client{dev: d, site: site, id: g, url: cmd.URLs[n%len(cmd.URLs)]}
		c.src = net.ParseIP(cmd.Shard.SourceIPs[n%len(cmd.Shard.SourceIPs)])
		w.clients = append(w.clients, c)
		return c
	}
	for _, s := range cmd.Shard.Sites {
		for _, id := range s.IDs {
			g := &idGroup{number: id.Number, site: s.Index}
			for i, d := range id.Devices {
				g.devices[i] = add(d, s.Index, g)
			}
		}
		for _, d := range s.Doors {
			add(d, s.Index, nil)
		}
	}
}

// connectResults gathers a batch of connects.
type connectResults struct {
	took       []int64 // per connection that made it (see connectAll)
	errors     map[string]int
	start, end time.Time
	lastOK     time.Time // the last welcome
}

// connectAll connects the clients, w.conc at a time. Each connection's time
// is its own dial + hello → welcome, or with a non-zero base (a drop) the
// time from base to its welcome.
func (w *worker) connectAll(ctx context.Context, clients []*client, resume bool, base time.Time) connectResults {
	res := connectResults{errors: map[string]int{}, start: time.Now()}
	var mu sync.Mutex
	sem := make(chan struct{}, w.conc)
	var wg sync.WaitGroup
	for _, c := range clients {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			token := c.dev.Token
			if resume {
				token = ""
			}
			for attempt := range dialAttempts {
				if attempt > 0 {
					time.Sleep(dialBackoff << (attempt - 1)) // backoff between attempts, not synchronisation
					token = c.dev.Token                      // a resume token is single-use
				}
				took, err := c.connect(ctx, token, w.timeout)
				now := time.Now()
				mu.Lock()
				if err != nil {
					res.errors[err.Error()]++
					mu.Unlock()
					continue
				}
				if !base.IsZero() {
					took = now.Sub(base)
				}
				res.took = append(res.took, int64(took))
				if now.After(res.lastOK) {
					res.lastOK = now
				}
				mu.Unlock()
				return
			}
		}()
	}
	wg.Wait()
	res.end = time.Now()
	return res
}

// reconnect drops every connection at once, then reconnects them all.
func (w *worker) reconnect(ctx context.Context, resume bool) *reconnectResult {
	drop := time.Now()
	var res connectResults
	if w.lean != nil {
		w.lean.dropAll()
		res = w.lean.connectAll(resume, drop)
	} else {
		var wg sync.WaitGroup
		for _, c := range w.clients {
			wg.Add(1)
			go func() { defer wg.Done(); c.drop() }()
		}
		wg.Wait()
		res = w.connectAll(ctx, w.clients, resume, drop)
	}
	r := &reconnectResult{
		Wanted: len(w.clients), Back: len(res.took), Errors: res.errors, BackNS: res.took,
		DropUnixNS: drop.UnixNano(),
	}
	if !res.lastOK.IsZero() { // none back: no welcome to time
		r.LastWelcomeUnix = res.lastOK.UnixNano()
	}
	return r
}

// lostCounts counts connections that ended without the tool dropping them.
func (w *worker) lostCounts() map[string]int {
	if w.lean != nil {
		return w.lean.lostCounts()
	}
	lost := map[string]int{}
	for _, c := range w.clients {
		if c.done == nil {
			continue
		}
		select {
		case <-c.done:
			if c.lost != "" {
				lost[c.lost]++
			}
		default:
		}
	}
	return lost
}

// dropAll closes every connection.
func (w *worker) dropAll() {
	if w.lean != nil {
		w.lean.stop()
		w.lean = nil
		return
	}
	for _, c := range w.clients {
		c.drop()
	}
}
