package api_test

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/foyer-intercom/foyer/api"
	"github.com/foyer-intercom/foyer/internal/promtest"
)

// TestRequestMetrics: API requests are counted by route pattern and
// status code and timed by route. The pattern, never the path: a site's
// ID does not become a label value (its two requests share one series);
// a request for no endpoint counts under the catch-all route, "/v1/".
func TestRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnvWith(t, func(c *api.Config) { c.Metrics = reg })
	e.anon().must(http.StatusUnauthorized, "GET", "/v1/sites", nil, nil)
	op := e.operator()
	var site struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites", map[string]string{"name": "Metrics Court"}, &site)
	op.must(http.StatusOK, "GET", "/v1/sites/"+site.ID, nil, nil)
	op.must(http.StatusNotFound, "GET", "/v1/sites/s_missing", nil, nil)
	e.anon().must(http.StatusNotFound, "GET", "/v1/no-such-route", nil, nil)
	e.anon().must(http.StatusNotFound, "PUT", "/v1/sites", nil, nil)

	want := map[string]float64{
		`foyer_api_requests_total{code="401",route="GET /v1/sites"}`:             1,
		`foyer_api_requests_total{code="200",route="POST /v1/admin/login"}`:      1,
		`foyer_api_requests_total{code="201",route="POST /v1/sites"}`:            1,
		`foyer_api_requests_total{code="200",route="GET /v1/sites/{site}"}`:      1,
		`foyer_api_requests_total{code="404",route="GET /v1/sites/{site}"}`:      1,
		`foyer_api_requests_total{code="404",route="/v1/"}`:                      2,
		`foyer_api_request_duration_seconds_count{route="GET /v1/sites"}`:        1,
		`foyer_api_request_duration_seconds_count{route="POST /v1/admin/login"}`: 1,
		`foyer_api_request_duration_seconds_count{route="POST /v1/sites"}`:       1,
		`foyer_api_request_duration_seconds_count{route="GET /v1/sites/{site}"}`: 2,
		`foyer_api_request_duration_seconds_count{route="/v1/"}`:                 2,
	}
	got := promtest.Gathered(t, reg)
	promtest.Compare(t, got, want)
}
