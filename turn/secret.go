package turn

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// secretFile is the name of the generated secret inside the data directory.
const secretFile = "turn.secret"

// secretBytes: 256 random bits, far beyond what HMAC-SHA1 needs.
const secretBytes = 32

// LoadOrCreateSecret returns the TURN secret kept in dir/turn.secret,
// creating a random one (256 bits, hex, mode 0600) the first time. It is
// for a single node: nodes sharing Redis must be configured with the same
// turn.secret instead. An unreadable or empty file is an error, never
// silently replaced: replacing it would invalidate every credential handed
// out, and a second process racing to create it gets the first one's.
func LoadOrCreateSecret(dir string) (string, error) {
	path := filepath.Join(dir, secretFile)
	if s, err := readSecret(path); !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("turn: secret directory: %w", err)
	}
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("turn: generating the secret: %w", err)
	}
	s := hex.EncodeToString(b[:])

	// Write a temporary file, then link it into place: the secret file
	// appears whole or not at all, and an existing one is never replaced.
	tmp, err := os.CreateTemp(dir, secretFile+".*")
	if err != nil {
		return "", fmt.Errorf("turn: keeping the secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(s + "\n")
	if serr := tmp.Sync(); werr == nil {
		werr = serr
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", fmt.Errorf("turn: keeping the secret: %w", werr)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return readSecret(path) // another process made it first
	} else if err != nil {
		return "", fmt.Errorf("turn: keeping the secret: %w", err)
	}
	return s, nil
}

// readSecret reads a secret file; an empty one is an error.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("turn: reading the secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("turn: %s is empty: delete it to generate a new secret, or set turn.secret", path)
	}
	return s, nil
}
