package directory_test

import (
	"errors"
	"testing"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
)

// TestNormalizeEmail: an address is stored trimmed, lower-cased and in
// Unicode NFC, so that one address typed two ways is one person; look-alike
// addresses (invisible or non-ASCII space characters, a domain given as an
// IP literal) are refused. Admin accounts' addresses follow the same rule
// (accounts.NormalizeEmail). (Found by review: such addresses made accounts
// that look like others in the portal.)
func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		" Anna@Example.com ":          "anna@example.com",
		"ren\u0065\u0301@example.com": "ren\u00e9@example.com", // e + combining acute → é
		"ren\u00e9@example.com":       "ren\u00e9@example.com",
	} {
		for name, norm := range map[string]func(string) (string, error){"directory": directory.NormalizeEmail, "accounts": accounts.NormalizeEmail} {
			if got, err := norm(in); err != nil || got != want {
				t.Errorf("%s.NormalizeEmail(%q) = %q, %v; want %q", name, in, got, err, want)
			}
		}
	}
	for _, in := range []string{
		"kate@example.com\u200b",  // zero-width space
		"ka\u200bte@example.com",  // zero-width space inside
		"kate\u00a0x@example.com", // no-break space
		"kate\u2028@example.com",  // line separator
		"kate@[127.0.0.1]",        // an IP literal for a domain
		"kate@example.com\u202e",  // right-to-left override
		"Kate <kate@example.com>", // a display name
	} {
		if _, err := directory.NormalizeEmail(in); !errors.Is(err, directory.ErrInvalid) {
			t.Errorf("directory.NormalizeEmail(%q): %v, want ErrInvalid", in, err)
		}
		if _, err := accounts.NormalizeEmail(in); !errors.Is(err, accounts.ErrInvalid) {
			t.Errorf("accounts.NormalizeEmail(%q): %v, want ErrInvalid", in, err)
		}
	}
}
