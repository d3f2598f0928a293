package redistest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestStartAndKill(t *testing.T) {
	var addr string
	t.Run("server", func(t *testing.T) {
		addr = Start(t)
		if reply, err := command(addr, "PING"); err != nil || reply != "PONG" {
			t.Fatalf("PING %s = %q, %v", addr, reply, err)
		}
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("address %s is not loopback", addr)
		}
	})
	if addr == "" {
		t.Skip("no redis-server")
	}
	if _, err := command(addr, "PING"); err == nil {
		t.Errorf("the server on %s still answers after its test ended", addr)
	}
}

func TestStartCluster(t *testing.T) {
	addrs := StartCluster(t)
	if len(addrs) != clusterSize {
		t.Fatalf("StartCluster returned %v", addrs)
	}
	nodes, err := command(addrs[0], "CLUSTER", "NODES")
	if err != nil || strings.Count(nodes, "master") != clusterSize {
		t.Errorf("CLUSTER NODES = %q, %v; want %d masters", nodes, err, clusterSize)
	}
}

func TestSkipWithoutTools(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("FOYER_REQUIRE_TOOLS", "")
	skipped := false
	t.Run("inner", func(t *testing.T) {
		t.Cleanup(func() { skipped = t.Skipped() })
		Start(t)
	})
	if !skipped {
		t.Error("Start without redis-server did not skip")
	}
}

// TestRequireTools runs this test binary again, with no redis-server on
// PATH and FOYER_REQUIRE_TOOLS=1: Start must fail the test, saying why.
func TestRequireTools(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") == "1" {
		Start(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRequireTools$", "-test.v")
	cmd.Env = append(os.Environ(), "REDISTEST_CHILD=1", "FOYER_REQUIRE_TOOLS=1", "PATH="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "FOYER_REQUIRE_TOOLS=1 but redis-server is not installed") {
		t.Errorf("child with FOYER_REQUIRE_TOOLS=1 and no redis-server: %v\n%s", err, out)
	}
}
