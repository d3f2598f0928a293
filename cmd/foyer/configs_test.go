package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"gopkg.in/yaml.v3"

	"github.com/foyer-intercom/foyer/internal/redistest"
)

// targetLabels are the labels Prometheus adds to every series it scrapes;
// a node's /metrics does not carry them.
var targetLabels = []string{"instance", "job"}

// TestConfigsQueryExposedMetrics: every foyer series the Grafana dashboard
// and the alert rules query is one a node exposes, with every label they
// match on or aggregate by, and the label values they match. promtool only
// checks that the queries parse: a misspelt name or label value makes a
// panel empty and an alert silent, and nothing else notices.
//
// The node runs in cluster mode (Redis) with TURN on, so that every family
// is registered. It places and answers a call, opens the door, refuses a
// handshake, rate-limits a call, sees a device go away, and answers an API
// request 503 with Redis stopped: the families that appear with their
// first sample then have one.
func TestConfigsQueryExposedMetrics(t *testing.T) {
	bin := foyerBin(t)
	redisSrv := redistest.StartServer(t)
	url := "redis://" + redisSrv.Addr + "/0"
	seed := exec.Command(bin, "seed", "/dev/stdin")
	seed.Stdin = bytes.NewBufferString(siteFile)
	seed.Dir = t.TempDir()
	seed.Env = append(os.Environ(), "FOYER_REDIS_URL="+url)
	out, err := seed.Output()
	if err != nil {
		t.Fatalf("seed on Redis: %v", err)
	}
	tokens := parseTokens(t, out)

	n := &node{addr: freeAddr(t), logs: &lockedBuffer{}}
	n.cmd = exec.Command(bin, "serve", "--listen", n.addr)
	n.cmd.Dir = t.TempDir()
	n.cmd.Env = append(os.Environ(), "FOYER_REDIS_URL="+url, "FOYER_MEDIA_LOOPBACK_ONLY=true",
		"FOYER_TURN_SECRET=configs-test-secret", "FOYER_TURN_LISTEN="+freeUDPAddr(t),
		"FOYER_SIGNALING_CALL_BURST=1") // the door's second call at once is rate-limited
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.cmd.Process.Kill() // the node this test started, by its PID
		_ = n.cmd.Wait()
		if t.Failed() {
			t.Logf("node log:\n%s", n.logs)
		}
	})
	waitReady(t, "http://"+n.addr+"/readyz")

	// A handshake refused: an unknown token.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.addr+"/v1/signal", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = ws.WriteJSON(map[string]any{"type": "hello", "token": "no-such-token", "version": 1})
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("a hello with an unknown token was welcomed")
	}
	_ = ws.Close()

	phone := n.dial(t, tokens["anna-phone"])
	door := n.dial(t, tokens["front-door"])
	_ = door.WriteJSON(map[string]any{"type": "call", "to": "101"})
	readType(t, door, "calling")
	_ = door.WriteJSON(map[string]any{"type": "call", "to": "101"})
	if e := readType(t, door, "error"); e["code"] != "rate_limited" {
		t.Fatalf("the door's second call: %v, want rate_limited", e)
	}
	ring := readType(t, phone, "ring")
	_ = phone.WriteJSON(map[string]any{"type": "answer", "call_id": ring["call_id"]})
	readType(t, phone, "answered")
	readType(t, door, "answered")
	_ = phone.WriteJSON(map[string]any{"type": "open_door", "call_id": ring["call_id"]})
	readType(t, door, "unlock")
	readType(t, phone, "door_opened")
	_ = door.WriteJSON(map[string]any{"type": "hangup", "call_id": ring["call_id"]})
	readType(t, door, "ended")
	readType(t, phone, "ended")
	_ = phone.Close() // a disconnect, by the peer

	var exposed series
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		exposed = scrapeSeries(t, "http://"+n.addr+"/metrics")
		// The disconnect is counted once the node has seen the close.
		if exposed.has("foyer_signaling_disconnects_total", "reason", "peer") || time.Now().After(deadline) {
			break
		}
	}
	// An API request that fails on the server's side (the API's alert
	// matches 5xx): Redis stopped, a session to look up.
	redisSrv.Stop()
	req, err := http.NewRequest("GET", "http://"+n.addr+"/v1/sites", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer no-such-session")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("an API request with Redis stopped: %d, want 503", resp.StatusCode)
	}
	exposed = scrapeSeries(t, "http://"+n.addr+"/metrics")

	queries := dashboardQueries(t, "../../configs/grafana-dashboard.json")
	queries = append(queries, alertQueries(t, "../../configs/prometheus-alerts.yaml")...)
	if len(queries) < 40 {
		t.Fatalf("only %d queries found in configs/; the test reads them wrong", len(queries))
	}
	for _, q := range queries {
		for _, problem := range exposed.check(q.expr) {
			t.Errorf("%s: %s\n\t%s", q.where, problem, q.expr)
		}
	}
}

// freeUDPAddr returns a loopback UDP address that was free a moment ago.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

// series is what a /metrics page exposes: sample name → label → values.
type series map[string]map[string][]string

func (s series) has(name, label, value string) bool {
	return slices.Contains(s[name][label], value)
}

// scrapeSeries reads a node's /metrics (text format) into series.
func scrapeSeries(t *testing.T, url string) series {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %v", url, resp.Status, err)
	}
	s := series{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, err := parseSample(line)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		if s[name] == nil {
			s[name] = map[string][]string{}
		}
		for k, v := range labels {
			if !slices.Contains(s[name][k], v) {
				s[name][k] = append(s[name][k], v)
			}
		}
	}
	return s
}

// parseSample splits a text-format sample line into its name and labels.
func parseSample(line string) (string, map[string]string, error) {
	end := strings.IndexAny(line, "{ ")
	if end < 0 {
		return "", nil, fmt.Errorf("no value")
	}
	name, rest := line[:end], line[end:]
	labels := map[string]string{}
	if rest[0] != '{' {
		return name, labels, nil
	}
	rest = rest[1:]
	for !strings.HasPrefix(rest, "}") {
		eq := strings.Index(rest, `="`)
		if eq < 0 {
			return "", nil, fmt.Errorf("bad labels")
		}
		label := rest[:eq]
		rest = rest[eq+2:]
		var v strings.Builder
		for {
			if rest == "" {
				return "", nil, fmt.Errorf("unterminated label value")
			}
			c := rest[0]
			rest = rest[1:]
			if c == '"' {
				break
			}
			if c == '\\' && rest != "" {
				c, rest = rest[0], rest[1:]
				if c == 'n' {
					c = '\n'
				}
			}
			v.WriteByte(c)
		}
		labels[label] = v.String()
		rest = strings.TrimPrefix(rest, ",")
	}
	return name, labels, nil
}

// query is a PromQL expression of configs/ and where it is.
type query struct{ where, expr string }

// dashboardQueries returns every query of a Grafana dashboard: its panels'
// targets and its template variables' queries.
func dashboardQueries(t *testing.T, path string) []query {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string                  `json:"title"`
		Targets []struct{ Expr string } `json:"targets"`
		Panels  []json.RawMessage       `json:"panels"`
	}
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var qs []query
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatal(err)
			}
			for _, tg := range p.Targets {
				qs = append(qs, query{"dashboard panel " + p.Title, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		qs = append(qs, query{"dashboard variable " + v.Name, v.Definition})
	}
	return qs
}

// alertQueries returns the expression of every rule of a rules file.
func alertQueries(t *testing.T, path string) []query {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var qs []query
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{"alert " + r.Alert + r.Record, r.Expr})
		}
	}
	return qs
}

// promToken is a token of a PromQL expression: an identifier, a string
// (unquoted), or an operator or bracket. Numbers and range durations are
// left out.
type promToken struct {
	text string
	str  bool // a string literal
}

var promTokens = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\[[^\]]*\]|[A-Za-z_:][A-Za-z0-9_:]*|[0-9.]+[a-z]*|=~|!~|!=|==|[<>]=?|[(){},=+\-*/^%]`)

func lexPromQL(expr string) []promToken {
	var out []promToken
	for _, tok := range promTokens.FindAllString(expr, -1) {
		switch {
		case tok[0] == '"' || tok[0] == '\'':
			out = append(out, promToken{text: strings.ReplaceAll(tok[1:len(tok)-1], `\"`, `"`), str: true})
		case tok[0] == '[' || tok[0] >= '0' && tok[0] <= '9' || tok[0] == '.':
			// a range or a number
		default:
			out = append(out, promToken{text: tok})
		}
	}
	return out
}

// check returns what in expr names no exposed foyer series, label or
// label value. Only foyer_ series are checked: up and probe_success come
// from Prometheus and the blackbox exporter.
func (s series) check(expr string) []string {
	toks := lexPromQL(expr)
	var problems []string
	// metricsIn lists the foyer series of toks[from:to].
	metricsIn := func(from, to int) []string {
		var names []string
		for _, tk := range toks[from:to] {
			if !tk.str && strings.HasPrefix(tk.text, "foyer_") {
				names = append(names, tk.text)
			}
		}
		return names
	}
	// group returns the end (exclusive) of the bracketed group opening at i.
	group := func(i int) int {
		depth := 0
		for j := i; j < len(toks); j++ {
			switch toks[j].text {
			case "(":
				depth++
			case ")":
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(toks)
	}
	// groupBefore returns the start of the bracketed group closing at i.
	groupBefore := func(i int) int {
		depth := 0
		for j := i; j >= 0; j-- {
			switch toks[j].text {
			case ")":
				depth++
			case "(":
				depth--
				if depth == 0 {
					return j
				}
			}
		}
		return 0
	}
	for i, tk := range toks {
		switch {
		case tk.str:
		case strings.HasPrefix(tk.text, "foyer_"):
			if _, ok := s[tk.text]; !ok {
				problems = append(problems, fmt.Sprintf("%s is not exposed", tk.text))
				continue
			}
			if i+1 >= len(toks) || toks[i+1].text != "{" {
				continue
			}
			for j := i + 2; j+2 < len(toks) && toks[j].text != "}"; {
				problems = append(problems, s.checkMatcher(tk.text, toks[j].text, toks[j+1].text, toks[j+2].text)...)
				j += 3
				if j < len(toks) && toks[j].text == "," {
					j++
				}
			}
		case tk.text == "by" || tk.text == "without" || tk.text == "on" || tk.text == "ignoring":
			if i+1 >= len(toks) || toks[i+1].text != "(" {
				continue
			}
			end := group(i + 1)
			var names []string
			switch {
			case tk.text == "on" || tk.text == "ignoring":
				names = metricsIn(0, len(toks)) // both sides of the operator
			case i > 0 && toks[i-1].text == ")": // sum(x) by (l)
				names = metricsIn(groupBefore(i-1), i)
			default: // sum by (l) (x)
				names = metricsIn(end, group(end))
			}
			for _, l := range toks[i+2 : end-1] {
				if l.text == "," || slices.Contains(targetLabels, l.text) {
					continue
				}
				for _, name := range names {
					if _, ok := s[name][l.text]; !ok && s[name] != nil {
						problems = append(problems, fmt.Sprintf("%s %s: %s has no label %s", tk.text, l.text, name, l.text))
					}
				}
			}
		}
	}
	return problems
}

// plainAlternatives matches a regexp that is only literal values: a|b|c.
var plainAlternatives = regexp.MustCompile(`^[A-Za-z0-9_ ]+(\|[A-Za-z0-9_ ]+)*$`)

// checkMatcher checks the matcher label op value of a selector of name: the
// label must be exposed on it, and an = or =~ must match values it takes.
func (s series) checkMatcher(name, label, op, value string) []string {
	if slices.Contains(targetLabels, label) {
		return nil
	}
	values, ok := s[name][label]
	if !ok {
		return []string{fmt.Sprintf("%s has no label %s", name, label)}
	}
	var problems []string
	switch op {
	case "=":
		if !slices.Contains(values, value) {
			problems = append(problems, fmt.Sprintf("%s{%s} is never %q (exposed: %q)", name, label, value, values))
		}
	case "=~":
		// Each alternative of a plain a|b|c must be a value; any other
		// regexp must match one.
		if plainAlternatives.MatchString(value) {
			for _, alt := range strings.Split(value, "|") {
				if !slices.Contains(values, alt) {
					problems = append(problems, fmt.Sprintf("%s{%s} is never %q (exposed: %q)", name, label, alt, values))
				}
			}
			return problems
		}
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return []string{fmt.Sprintf("%s{%s=~%q}: %v", name, label, value, err)}
		}
		if !slices.ContainsFunc(values, re.MatchString) {
			problems = append(problems, fmt.Sprintf("%s{%s=~%q} matches no exposed value (%q)", name, label, value, values))
		}
	}
	return problems
}

// TestConfigsCheckFindsMistakes: the check above notices a misspelt name,
// a missing label and a label value never exposed, in either form of an
// aggregation.
func TestConfigsCheckFindsMistakes(t *testing.T) {
	s := series{
		"foyer_calls_total":                 {"outcome": {"answered", "no_answer"}},
		"foyer_calls_ring_seconds_bucket":   {"le": {"0.001", "+Inf"}},
		"foyer_signaling_connected_devices": {"kind": {"app"}},
	}
	for _, tc := range []struct {
		expr string
		bad  int
	}{
		{`sum by (outcome) (rate(foyer_calls_total{instance=~"$instance"}[5m])) * 60`, 0},
		{`sum(increase(foyer_calls_total{outcome=~"answered|no_answer"}[15m])) >= 20`, 0},
		{`histogram_quantile(0.99, sum by (le) (rate(foyer_calls_ring_seconds_bucket[5m]))) > 1`, 0},
		{`sum by (job) (foyer_signaling_connected_devices) == 0 and up{job="foyer"} == 1`, 0},
		{`label_values(foyer_signaling_connected_devices, instance)`, 0},
		{`sum(rate(foyer_call_total[5m]))`, 1},                                   // misspelt
		{`sum(rate(foyer_calls_ring_seconds_count[5m]))`, 1},                     // not exposed
		{`sum(rate(foyer_calls_total{reason="hangup"}[5m]))`, 1},                 // no such label
		{`sum(rate(foyer_calls_total{outcome="no-answer"}[5m]))`, 1},             // no such value
		{`sum(rate(foyer_calls_total{outcome=~"answered|declined"}[5m]))`, 1},    // one value never exposed
		{`sum by (kind) (rate(foyer_calls_total[5m]))`, 1},                       // aggregated by a label it lacks
		{`sum(foyer_signaling_connected_devices) by (kind, reason)`, 1},          // postfix form
		{`sum(rate(foyer_calls_total{outcome=~"ans.*"}[5m])) / sum(foyer_x)`, 1}, // a regexp that matches; a name that does not exist
	} {
		if got := s.check(tc.expr); len(got) != tc.bad {
			t.Errorf("%s: %d problems %q, want %d", tc.expr, len(got), got, tc.bad)
		}
	}
}
