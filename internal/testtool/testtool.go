// Package testtool finds the outside programs tests drive (redis-server,
// coturn's clients, promtool, prlimit, chromium). Without one a test is
// skipped, unless FOYER_REQUIRE_TOOLS=1 (as `make test` sets it, having
// installed them), which makes it fail: CI must not pass by skipping.
package testtool

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Require returns the path of the program name (a name looked up on PATH,
// or a path), which Debian's package debianPackage provides, or ends the
// test: skipped, or failed under FOYER_REQUIRE_TOOLS=1.
func Require(tb testing.TB, name, debianPackage string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s is not installed (apt-get install %s; make test does): %v", name, debianPackage, err)
	if os.Getenv("FOYER_REQUIRE_TOOLS") == "1" {
		tb.Fatalf("FOYER_REQUIRE_TOOLS=1 but %s", msg)
	}
	tb.Skipf("skipping: %s; set FOYER_REQUIRE_TOOLS=1 to make this a failure", msg)
	return ""
}
