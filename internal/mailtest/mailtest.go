// Package mailtest reads the e-mails that tests capture, from a real SMTP
// exchange or the outbox: the body as the recipient reads it.
package mailtest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

// Text decodes a body (or a part) sent with the Content-Transfer-Encoding
// cte: quoted-printable, base64, or none.
func Text(cte string, r io.Reader) (string, error) {
	switch strings.ToLower(cte) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("mailtest: decoding a %q body: %w", cte, err)
	}
	return string(b), nil
}

// Body reads a whole single-part message and returns its decoded body.
func Body(raw []byte) (string, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", fmt.Errorf("mailtest: unreadable e-mail: %w", err)
	}
	return Text(m.Header.Get("Content-Transfer-Encoding"), m.Body)
}
