package api_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func parallelPosts(e *env, n int, path string, body func(i int) string) map[int]int {
	var mu sync.Mutex
	got := map[int]int{}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := http.Post(e.srv.URL+path, "application/json", strings.NewReader(body(i)))
			if err != nil {
				e.t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			got[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return got
}

// TestOneTimeSecretsAtOnce: a provisioning code, a reset link and a
// one-time PIN each used many times at the same moment work once.
func TestOneTimeSecretsAtOnce(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Race")

	var p provisioned
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/devices", map[string]string{"kind": "door_station", "name": "Gate"}, &p)
	got := parallelPosts(e, 20, "/v1/provision", func(int) string { return fmt.Sprintf(`{"code":%q}`, p.ProvisioningCode) })
	t.Logf("provisioning code spent 20 times at once: %v", got)
	if got[http.StatusOK] != 1 {
		t.Errorf("provisioning code: %v, want exactly one 200", got)
	}

	e.resident(op, site, "race@example.com", "4")
	e.anon().must(http.StatusAccepted, "POST", "/v1/app/password/forgot", map[string]string{"email": "race@example.com"}, nil)
	tok := regexp.MustCompile(`token=(\S+)`).FindStringSubmatch(mailText(t, e.mail.waitFor(t, "race@example.com", regexp.MustCompile(`reset`)).data))
	got = parallelPosts(e, 8, "/v1/app/password/reset", func(i int) string {
		return fmt.Sprintf(`{"token":%q,"new_password":"new password %d"}`, tok[1], i)
	})
	t.Logf("reset link spent 8 times at once: %v", got)
	if got[http.StatusNoContent] != 1 {
		t.Errorf("reset link: %v, want exactly one 204", got)
	}

	gateID, gateTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "G2"})
	backID, backTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "B2"})
	var u struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/users", map[string]any{"email": "otc@example.com", "number": "5", "display_name": "C", "send_invitation": false}, &u)
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/codes", map[string]any{"user_id": u.ID, "pin": "9999", "doors": []string{gateID, backID}, "one_time": true}, nil)
	gate, _ := e.connect(gateTok)
	back, _ := e.connect(backTok)
	var wg sync.WaitGroup
	res := make([]any, 2)
	for i, w := range []*ws{gate, back} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = w.c.WriteJSON(map[string]any{"type": "pin", "code": "9999"})
			_ = w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				var m map[string]any
				if err := w.c.ReadJSON(&m); err != nil {
					return
				}
				if m["type"] == "unlock" || m["type"] == "error" {
					res[i] = m["type"]
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("one-time PIN on two doors at once: %v", res)
	if res[0] == "unlock" && res[1] == "unlock" {
		t.Errorf("one-time code opened both doors")
	}
}

// TestAppDeviceLimitAtOnce: the 10-device limit is read, then written,
// outside one transaction: parallel registrations pass it.
func TestAppDeviceLimitAtOnce(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Phones")
	e.resident(op, site, "many@example.com", "2") // registers "phone"
	app := e.residentApp("many@example.com")
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/app/devices", strings.NewReader(fmt.Sprintf(`{"name":"tablet %d"}`, i)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+app.token)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	close(start)
	wg.Wait()
	var me struct{ Devices []any }
	app.must(http.StatusOK, "GET", "/v1/app/me", nil, &me)
	if len(me.Devices) > 10 {
		t.Errorf("%d app devices after parallel registrations, limit 10", len(me.Devices))
	}
}
