package api_test

import (
	"encoding/base64"
	"errors"
	"io"
	"mime/quotedprintable"
	"strings"
)

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }

func decodeBody(t interface{ Fatal(args ...any) }, cte string, r io.Reader) string {
	switch strings.ToLower(cte) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
