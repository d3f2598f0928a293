package signaling

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRouterMetricsFromTheStart: a node's Redis errors by op and its
// presence rebuilds by cause exist at 0 from its start (the alerts sum
// them), and the round trips of its Redis operations and probes are timed.
func TestRouterMetricsFromTheStart(t *testing.T) {
	ts := newNodes(t, harborView, Config{}, 2, RedisRouterOptions{})
	m := ts.hubs[0].router.(*RedisRouter).metrics
	if n := testutil.CollectAndCount(m.redisErrors); n != len(redisOps) {
		t.Errorf("foyer_redis_errors_total has %d series, want one per op (%d)", n, len(redisOps))
	}
	for _, op := range redisOps {
		if n := testutil.ToFloat64(m.redisErrors.WithLabelValues(op)); n != 0 {
			t.Errorf("foyer_redis_errors_total{op=%q} = %v with Redis up, want 0", op, n)
		}
	}
	if n := testutil.CollectAndCount(m.resyncs); n != 3 {
		t.Errorf("foyer_router_presence_resyncs_total has %d series, want one per cause (3)", n)
	}
	if n := testutil.ToFloat64(m.resyncs.WithLabelValues("lost_event")); n != 0 {
		t.Errorf("presence rebuilds for a lost event: %v, want 0", n)
	}
	// The nodes' probes of their own channels come back within a second.
	for deadline := time.Now().Add(readTimeout); ; time.Sleep(10 * time.Millisecond) {
		if n, _ := histogram(t, m.rtt); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no Redis round trip timed")
		}
	}
}

// TestRedisOpsListed: every op the router passes to fail is one of
// redisOps, the series that exist from the start.
func TestRedisOpsListed(t *testing.T) {
	files, err := filepath.Glob("router_redis*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "fail" || len(call.Args) != 2 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: fail's op is not a string literal", fset.Position(call.Pos()))
				return true
			}
			op, _ := strconv.Unquote(lit.Value)
			if !slices.Contains(redisOps, op) {
				t.Errorf("%s: op %q is not in redisOps", fset.Position(call.Pos()), op)
			}
			found++
			return true
		})
	}
	if found == 0 {
		t.Fatal("found no call of fail")
	}
}

// TestRedisErrorsCountedByOp: a failed Redis operation is counted under
// what the router was doing. With Redis down, a call's look-up of its
// devices fails as locate.
func TestRedisErrorsCountedByOp(t *testing.T) {
	// The directory stays readable without Redis: the nodes share a bbolt
	// store in-process.
	ts := newNodesWith(t, harborView, unlimited(), 2, nodeOptions{sharedBolt: true})
	door := ts.connectTo(t, 0, "front-door")
	r0 := ts.hubs[0].router.(*RedisRouter)
	ts.redis.Stop()
	// While its presence view is in step, a node locates devices without
	// asking Redis.
	for begun := time.Now(); r0.inStep(); time.Sleep(10 * time.Millisecond) {
		if time.Since(begun) > 2*readTimeout {
			t.Fatal("node 0's presence view is still in step with Redis down")
		}
	}
	locate := r0.metrics.redisErrors.WithLabelValues("locate")
	before := testutil.ToFloat64(locate)
	door.send(map[string]any{"type": "call", "to": "102"}) // dirk-phone, connected nowhere
	door.expectError("service_unavailable")
	if n := testutil.ToFloat64(locate); n != before+1 {
		t.Errorf("foyer_redis_errors_total{op=\"locate\"} went from %v to %v, want one more", before, n)
	}
}
