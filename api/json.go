package api

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Body limits: JSON requests are small objects; a CSV import of 10,000
// rows is well under 4 MiB.
const (
	maxJSONBody = 64 << 10
	maxCSVBody  = 4 << 20
)

// decode reads a JSON object into v strictly: the right content type, at
// most maxJSONBody bytes, no unknown fields, nothing after the object.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errBadRequest("unexpected data after the JSON object")
	}
	return nil
}

// jsonError turns a decoding error into a message naming the field.
func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &te):
		return errBadRequest("field %q: want %s, got JSON %s", te.Field, te.Type, te.Value)
	case errors.As(err, &se):
		return errBadRequest("malformed JSON at byte %d", se.Offset)
	case errors.Is(err, io.EOF):
		return errBadRequest("empty body: send a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return errBadRequest("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return errBadRequest("malformed JSON: %s", err.Error())
}

// required returns a bad_request error naming the first empty field.
func required(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if strings.TrimSpace(fields[i+1]) == "" {
			return errBadRequest("missing %q", fields[i])
		}
	}
	return nil
}

// created writes 201 with v; ok writes 200 with v.
func created(w http.ResponseWriter, v any) error { writeJSON(w, http.StatusCreated, v); return nil }
func ok(w http.ResponseWriter, v any) error      { writeJSON(w, http.StatusOK, v); return nil }
func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}
