package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHalfOpenHandshakes: 1,000 clients that start a request and never
// finish its headers are all closed by the server within its header
// timeout (1 s here), a normal client is served meanwhile, and the server's
// goroutines return to their baseline.
func TestHalfOpenHandshakes(t *testing.T) {
	const n = 1000
	const headerTimeout = time.Second
	addr := serveQuiet(t, "FOYER_HTTP_READ_HEADER_TIMEOUT="+headerTimeout.String())
	base := "http://" + addr
	baseline := goroutines(t, base)

	var wg sync.WaitGroup
	closedAfter := make([]time.Duration, n)
	start := time.Now()
	for i := range n {
		// Spread the clients over source addresses, as the internet would.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%250))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if _, err := io.WriteString(c, "GET /v1/signal HTTP/1.1\r\nHost: foyer\r\nUpgrade: websocket\r\n"); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // only if the server never closes
			_, _ = io.Copy(io.Discard, c)
			closedAfter[i] = time.Since(start)
		})
	}
	opened := time.Since(start)
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a normal client during the flood: %v %v", resp, err)
	}
	resp.Body.Close()
	wg.Wait()
	var worst time.Duration
	for _, d := range closedAfter {
		worst = max(worst, d)
	}
	// Each was closed at most headerTimeout after it connected; the last
	// connected `opened` after the start. Allow a second for scheduling.
	if limit := opened + headerTimeout + time.Second; worst > limit {
		t.Fatalf("the last half-open client was closed %v after the start, want within %v (opening took %v)", worst, limit, opened)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := goroutines(t, base)
		if g <= baseline+5 {
			t.Logf("%d half-open clients opened in %v, all closed %v after the start; goroutines %d → %d", n, opened, worst, baseline, g)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d, baseline %d: not back after the half-open clients were closed", g, baseline)
		}
		time.Sleep(100 * time.Millisecond) // polling another process
	}
}

// serveQuiet starts `foyer serve` on a free loopback address with an empty
// data directory, no TURN server and env added to its environment, waits
// until it is ready, and returns the address. It is killed when the test
// ends.
func serveQuiet(t *testing.T, env ...string) string {
	t.Helper()
	addr := freeAddr(t)
	serve := exec.Command(foyerBin(t), "serve", "--listen", addr, "--data-dir", t.TempDir())
	serve.Env = append(append(os.Environ(), "FOYER_TURN_ENABLED=false"), env...)
	serve.Stderr = io.Discard
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })
	waitReady(t, "http://"+addr+"/readyz")
	return addr
}

// TestOversizedHeaders: a request whose headers pass the server's bound
// (64 KiB, where Go's default is 1 MiB) is refused with 431 before any
// handler runs, on the public listener and the operator's metrics
// listener alike, and the server goes on serving: a request with headers
// of a usual size, even a large cookie's, is answered.
func TestOversizedHeaders(t *testing.T) {
	metrics := freeAddr(t)
	public := serveQuiet(t, "FOYER_METRICS_LISTEN="+metrics)
	t.Run("public", func(t *testing.T) { headerBound(t, "http://"+public+"/healthz") })
	t.Run("metrics", func(t *testing.T) { headerBound(t, "http://"+metrics+"/metrics") })
}

// headerBound checks that url refuses 100 KiB of headers and then serves
// 16 KiB.
func headerBound(t *testing.T, url string) {
	get := func(header int) int {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Filler", strings.Repeat("a", header))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%d bytes of headers: %v", header, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(100 << 10); s != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("100 KiB of headers: %d, want 431", s)
	}
	if s := get(16 << 10); s != http.StatusOK {
		t.Fatalf("16 KiB of headers after the refusal: %d, want 200", s)
	}
}

// goroutines reads go_goroutines from the server's /metrics.
func goroutines(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatal(fmt.Errorf("no go_goroutines in /metrics"))
	return 0
}

// TestIdleKeepAliveClosed: a keep-alive connection left idle after a
// request is closed by the server after http.idle_timeout (1 s here), on
// the public listener and on metrics.listen alike.
func TestIdleKeepAliveClosed(t *testing.T) {
	metrics := freeAddr(t)
	public := serveQuiet(t, "FOYER_HTTP_IDLE_TIMEOUT=1s", "FOYER_METRICS_LISTEN="+metrics)
	for _, tc := range []struct{ name, addr, path string }{
		{"public", public, "/healthz"},
		{"metrics", metrics, "/metrics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req, _ := http.NewRequest("GET", "http://"+tc.addr+tc.path, nil)
			if err := req.Write(c); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %v %v", tc.path, resp, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // only if the server never closes
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("an idle keep-alive connection: read %v, want the server to close it (EOF) after http.idle_timeout 1s", err)
			}
		})
	}
}
