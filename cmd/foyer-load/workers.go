package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// closeWait is how long a worker may take to close its sockets and exit
// before it is killed.
const closeWait = 10 * time.Second

// workerProc is one worker process and its command pipe.
type workerProc struct {
	id    int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	enc   *json.Encoder
	dec   *json.Decoder
}

// startWorkers re-executes this binary n times as workers.
func startWorkers(n int, log *slog.Logger) ([]*workerProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var procs []*workerProc
	for i := range n {
		cmd := exec.Command(exe, workerCommand)
		cmd.Env = workerEnv(os.Environ(), i, n, runtime.NumCPU())
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			stopWorkers(procs, log)
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			stopWorkers(procs, log)
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			stopWorkers(procs, log)
			return nil, fmt.Errorf("starting worker %d: %w", i, err)
		}
		procs = append(procs, &workerProc{id: i, cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), dec: json.NewDecoder(stdout)})
	}
	return procs, nil
}

// workerEnv is worker i's environment: this process's, its ID, and, unless
// GOMAXPROCS is set already, an equal share of the machine's CPUs (at least
// one each). The workers share the cores with each other, and often with
// the server; each running as many threads as there are cores made them
// preempt one another: on this 2-core machine, 3 workers with one thread
// each brought 19,005 devices back about 8 % sooner in the reconnect storm,
// with less CPU of their own (docs/benchmarks.md, "Load").
func workerEnv(environ []string, i, n, cpus int) []string {
	env := append(slices.Clip(environ), workerIDEnv+"="+strconv.Itoa(i))
	if slices.ContainsFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") }) {
		return env
	}
	return append(env, "GOMAXPROCS="+strconv.Itoa(max(1, cpus/n)))
}

// call sends one command and reads the worker's reply.
func (p *workerProc) call(cmd command) (reply, error) {
	if err := p.enc.Encode(cmd); err != nil {
		return reply{}, fmt.Errorf("worker %d: %w", p.id, err)
	}
	var rep reply
	if err := p.dec.Decode(&rep); err != nil {
		return reply{}, fmt.Errorf("worker %d exited or broke its pipe: %w", p.id, err)
	}
	if rep.Err != "" {
		return rep, fmt.Errorf("worker %d: %s", p.id, rep.Err)
	}
	return rep, nil
}

// callAll runs one command per worker at the same time and returns the
// replies in worker order. When ctx ends first the workers are killed.
func callAll(ctx context.Context, procs []*workerProc, mk func(i int) command) ([]reply, error) {
	replies := make([]reply, len(procs))
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i], errs[i] = p.call(mk(i))
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		for _, p := range procs {
			_ = p.cmd.Process.Kill() // our own child, by its PID
		}
		<-finished
		return nil, ctx.Err()
	}
	return replies, errors.Join(errs...)
}

// stopWorkers asks every worker to close its sockets and exit, and kills
// the ones that do not in time.
func stopWorkers(procs []*workerProc, log *slog.Logger) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			exited := make(chan error, 1)
			go func() {
				_, _ = p.call(command{Op: opClose}) // read the reply before Wait closes the pipe
				_ = p.stdin.Close()
				exited <- p.cmd.Wait()
			}()
			select {
			case err := <-exited:
				if err != nil {
					log.Warn("worker exited with an error", "worker", p.id, "err", err)
				}
			case <-time.After(closeWait):
				log.Warn("worker did not exit; killing it", "worker", p.id, "pid", p.cmd.Process.Pid)
				_ = p.cmd.Process.Kill()
				<-exited
			}
		}()
	}
	wg.Wait()
}

// splitShards assigns whole sites to as few workers as --per-worker allows
// (at least --workers), largest sites first to the least loaded worker.
func splitShards(l *layout, o *options) ([]*shard, error) {
	total := 0
	sites := append([]*siteLayout(nil), l.Sites...)
	for _, s := range sites {
		if s.sockets() > o.perWorker {
			return nil, fmt.Errorf("site %s has %d sockets, more than --per-worker %d: seed with a lower --ids-per-site",
				siteName(s.Index), s.sockets(), o.perWorker)
		}
		total += s.sockets()
	}
	sort.SliceStable(sites, func(i, j int) bool { return sites[i].sockets() > sites[j].sockets() })
	for n := max(1, o.workers, (total+o.perWorker-1)/o.perWorker); ; n++ {
		shards := make([]*shard, n)
		load := make([]int, n)
		for i := range shards {
			shards[i] = &shard{}
		}
		fits := true
		for _, s := range sites {
			least := 0
			for i := range load {
				if load[i] < load[least] {
					least = i
				}
			}
			load[least] += s.sockets()
			fits = fits && load[least] <= o.perWorker
			shards[least].Sites = append(shards[least].Sites, s)
		}
		if !fits {
			continue
		}
		var out []*shard
		for i, sh := range shards {
			if len(sh.Sites) == 0 {
				continue
			}
			for k := range o.sourceIPs { // each worker starts on a different address
				sh.SourceIPs = append(sh.SourceIPs, fmt.Sprintf("127.0.0.%d", 2+(i*31+k)%o.sourceIPs))
			}
			out = append(out, sh)
		}
		return out, nil
	}
}
