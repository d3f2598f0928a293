package directory

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// tokenBytes is the entropy of a device token: 256 bits, well above the 128
// the design asks for.
const tokenBytes = 32

// TokenHash is the SHA-256 of a token. Stores keep only the hash, so a leaked
// store does not leak credentials; a fast hash is right here because tokens
// are random, not guessable passwords.
type TokenHash [sha256.Size]byte

// NewToken returns a fresh random token and its hash.
func NewToken() (string, TokenHash) {
	var b [tokenBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	tok := "fyr_" + base64.RawURLEncoding.EncodeToString(b[:])
	return tok, HashToken(tok)
}

// HashToken returns the hash under which a token is stored.
func HashToken(token string) TokenHash {
	return sha256.Sum256([]byte(token))
}

// NewID returns a random identifier with a kind prefix, such as "s_…" for a site.
func NewID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}
