package email

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrNotFound is returned by Outbox.Read for a missing message.
var ErrNotFound = errors.New("email: no such message in the outbox")

// Outbox writes messages as .eml files into a folder instead of sending them.
type Outbox struct {
	// Immutable after construction.
	dir  string
	from string
}

var _ Sender = (*Outbox)(nil)

// OutboxItem describes one message in the outbox.
type OutboxItem struct {
	Name    string    `json:"name"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Date    time.Time `json:"date"`
	Size    int64     `json:"size"`
}

// NewOutbox returns an outbox writing to dir (created 0700) with from as sender.
func NewOutbox(dir, from string) (*Outbox, error) {
	if _, err := mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("email: outbox sender %q: %w", from, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("email: creating the outbox: %w", err)
	}
	return &Outbox{dir: dir, from: from}, nil
}

// Send implements Sender: the message is written, complete, under a
// sortable unique name (written to a temporary name, then renamed).
func (o *Outbox) Send(_ context.Context, m Message) error {
	msg, err := build(o.from, m)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return fmt.Errorf("email: writing message: %w", err)
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(r[:]) + ".eml"
	tmp := filepath.Join(o.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("email: outbox: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(o.dir, name)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("email: outbox: %w", err)
	}
	return nil
}

// List returns the messages, newest first.
func (o *Outbox) List() ([]OutboxItem, error) {
	ents, err := os.ReadDir(o.dir)
	if err != nil {
		return nil, fmt.Errorf("email: outbox: %w", err)
	}
	out := []OutboxItem{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".eml") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(o.dir, e.Name()))
		if err != nil {
			continue // removed meanwhile
		}
		it := OutboxItem{Name: e.Name(), Size: int64(len(b))}
		if m, err := mail.ReadMessage(bytes.NewReader(b)); err == nil {
			dec := new(mime.WordDecoder)
			it.To = m.Header.Get("To")
			if it.Subject, err = dec.DecodeHeader(m.Header.Get("Subject")); err != nil {
				it.Subject = m.Header.Get("Subject")
			}
			it.Date, _ = m.Header.Date()
		}
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b OutboxItem) int { return strings.Compare(b.Name, a.Name) })
	return out, nil
}

// Read returns one message's raw text; names with path parts are refused.
func (o *Outbox) Read(name string) ([]byte, error) {
	if name != filepath.Base(name) || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".eml") {
		return nil, ErrNotFound
	}
	b, err := os.ReadFile(filepath.Join(o.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return b, err
}
