package directory_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/foyer-intercom/foyer/directory"
)

// TestNewToken: a device token is "fyr_" and 256 random bits in URL-safe
// base64 (the design asks for at least 128, so that no token can be
// guessed), each one different, and the hash NewToken gives is the hash
// HashToken finds it by.
func TestNewToken(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		tok, hash := directory.NewToken()
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, "fyr_"))
		if !strings.HasPrefix(tok, "fyr_") || err != nil || len(raw) != 32 {
			t.Fatalf("NewToken() = %q (%d random bytes, %v), want fyr_ and 32 bytes in URL-safe base64", tok, len(raw), err)
		}
		if directory.HashToken(tok) != hash {
			t.Fatalf("NewToken's hash of %q is not HashToken's", tok)
		}
		if seen[tok] {
			t.Fatalf("NewToken gave %q twice", tok)
		}
		seen[tok] = true
	}
}
