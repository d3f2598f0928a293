package api_test

import (
	"errors"
	"io"

	"github.com/foyer-intercom/foyer/internal/mailtest"
)

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }

func decodeBody(t interface{ Fatal(args ...any) }, cte string, r io.Reader) string {
	s, err := mailtest.Text(cte, r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
