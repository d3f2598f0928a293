package email_test

import (
	"mime"
	"net/mail"
	"testing"

	"github.com/foyer-intercom/foyer/internal/mailtest"
)

type mimeDecoder = mime.WordDecoder

// bodyOf decodes a single-part message body.
func bodyOf(t *testing.T, m *mail.Message) string {
	t.Helper()
	s, err := mailtest.Text(m.Header.Get("Content-Transfer-Encoding"), m.Body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
