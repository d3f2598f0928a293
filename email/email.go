// Package email sends foyer's e-mail (invitations of app users and of
// admins, password resets, "you were added to a site" notices) over SMTP with github.com/wneessen/go-mail,
// or, when no SMTP server is configured, writes each message as an .eml
// file to an outbox folder, so the zero-config server still shows what it
// would have sent.
package email

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gomail "github.com/wneessen/go-mail"
)

// Message is one e-mail. Text is the plain-text body; HTML is optional.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Sender sends messages. Implementations are safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// ErrHeader reports a header value that would inject further headers.
var ErrHeader = errors.New("email: line break in a header value")

// build turns m into a go-mail message from from, checking the headers.
func build(from string, m Message) (*gomail.Msg, error) {
	for _, v := range []string{m.To, m.Subject, from} {
		if strings.ContainsAny(v, "\r\n") {
			return nil, ErrHeader
		}
	}
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("email: from %q: %w", from, err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("email: to %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}
