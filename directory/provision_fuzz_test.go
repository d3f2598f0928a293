package directory_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/foyer-intercom/foyer/directory"
)

// lineMessage is how every refusal of a provisioning file starts.
var lineMessage = regexp.MustCompile(`^line [1-9][0-9]*: \S`)

// FuzzParseProvision checks that the decoder of outside input never panics
// and that every refusal names a line.
func FuzzParseProvision(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"", "sites: []\n", "sites:\n  - name: A\n    ids:\n      - id: 1\n        name: B\n",
		"sites:\n  - &a\n    name: A\n  - *a\n", "sites: [\n", "sites:\n  - name: A\n    ring_timeout_s: 99999999999999999999\n",
		"sites:\n  - name: A\n    ids: [{id: '1', name: x, app_users: [{email: a@b.c, devices: [p, p]}]}]\n",
		"a: !!binary aGVsbG8=\n", "--- |\n  x\n", "sites: {<<: {name: A}}\n", "\xef\xbb\xbfsites: []\n", "sites: \xff\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := directory.ParseProvision(data)
		if err == nil {
			if pf == nil {
				t.Fatal("nil file and nil error")
			}
			return
		}
		var pe *directory.ProvisionError
		if !errors.As(err, &pe) || pe.Line < 1 || !lineMessage.MatchString(err.Error()) {
			t.Fatalf("error %q (%T) does not name a line", err, err)
		}
	})
}
