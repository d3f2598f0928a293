package api

import (
	"errors"
	"testing"
)

// FuzzParseCSV: any bytes give rows or a client error, never a panic or an
// internal error; every row returned is valid.
func FuzzParseCSV(f *testing.F) {
	for _, seed := range []string{
		"email,call_id,display_name\na@example.com,1,A\n",
		"email,call_id,display_name,licence,tags\nb@example.com,12,B,inactive,x;y\n",
		"\xef\xbb\xbfemail,call_id,display_name\n\"q@example.com\",\"2\",\"Quoted, name\"\n",
		"email,call_id,display_name\na@example.com,1\n",
		"email,call_id,display_name\n'=cmd@example.com,1,'=SUM(A1)\n",
		"email,email\n",
		"\xff\xfe",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := parseCSV(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status >= 500 {
				t.Fatalf("parseCSV: %v, want a client error", err)
			}
			return
		}
		if len(rows) == 0 || len(rows) > maxImportRows {
			t.Fatalf("%d rows accepted", len(rows))
		}
		for _, r := range rows {
			again := r
			if err := again.normalize(); err != nil {
				t.Fatalf("row %d accepted but invalid: %v", r.Row, err)
			}
		}
	})
}
