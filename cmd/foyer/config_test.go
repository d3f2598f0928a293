package main

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaults(t *testing.T) {
	cfg, _, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8080" || cfg.DataDir != "./data" || !cfg.TURN.Enabled || cfg.TURN.Listen != ":3478" || cfg.Redis.URL != "" || cfg.Metrics.Listen != "" {
		t.Fatalf("defaults differ from DESIGN.md: %+v", cfg)
	}
}

func TestConfigExampleFileLoads(t *testing.T) {
	cfg, _, err := loadConfig("../../configs/foyer.example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	nilEmptySlices(reflect.ValueOf(&cfg).Elem()) // "[]" in the file
	if !reflect.DeepEqual(cfg, mustDefault(t)) {
		t.Fatalf("the example file should show the defaults:\n got %+v\nwant %+v", cfg, mustDefault(t))
	}
}

// nilEmptySlices turns every empty slice in a struct into nil.
func nilEmptySlices(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Kind() == reflect.Struct:
			nilEmptySlices(f)
		case f.Kind() == reflect.Slice && f.Len() == 0:
			f.Set(reflect.Zero(f.Type()))
		}
	}
}

func mustDefault(t *testing.T) Config {
	t.Helper()
	cfg, _, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConfigFileAndEnv(t *testing.T) {
	p := writeFile(t, "foyer.yaml", "listen: \":9000\"\nturn:\n  secret: from-file\nsignaling:\n  heartbeat: 5s\n")
	env := []string{"FOYER_TURN_SECRET=from-env", "FOYER_REDIS_CLUSTER_ADDRS=127.0.0.1:7000, 127.0.0.1:7001", "PATH=/bin", "FOYER_SIGNALING_SEND_QUEUE=128", "FOYER_DRAIN_TIMEOUT=90s"}
	env = append(env, "FOYER_LISTN=typo", "FOYER_ADMIN_PASSWORD=not a key, but foyer's own")
	cfg, unknown, err := loadConfig(p, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) != 1 || unknown[0] != "FOYER_LISTN" {
		t.Fatalf("unknown variables reported: %v", unknown)
	}
	if cfg.Listen != ":9000" || cfg.TURN.Secret != "from-env" || cfg.Signaling.Heartbeat != 5*time.Second || cfg.Signaling.SendQueue != 128 || cfg.DrainTimeout != 90*time.Second {
		t.Fatalf("got %+v", cfg)
	}
	if len(cfg.Redis.ClusterAddrs) != 2 || cfg.Redis.ClusterAddrs[1] != "127.0.0.1:7001" {
		t.Fatalf("cluster addrs %v", cfg.Redis.ClusterAddrs)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"unknown key", "listen: \":1\"\nlisen: x\n", nil, "lisen"},
		{"unknown nested key", "turn:\n  secrt: x\n", nil, "secrt"},
		{"wrong type", "signaling:\n  send_queue: many\n", nil, "line 2"},
		{"bad duration", "drain_timeout: soon\n", nil, "line 1"},
		{"bad log level", "log_level: loud\n", nil, "log_level"},
		{"url and cluster", "redis:\n  url: redis://127.0.0.1:1\n  cluster_addrs: [127.0.0.1:2]\n", nil, "not both"},
		{"bad env value", "", []string{"FOYER_TURN_ENABLED=maybe"}, "FOYER_TURN_ENABLED"},
		{"pprof on the public listener", "metrics:\n  pprof: true\n", nil, "metrics.listen"},
		{"rejoin window too long", "signaling:\n  rejoin_window: 1h\n", nil, "signaling.rejoin_window"},
		{"rejoin window off", "signaling:\n  rejoin_window: 0s\n", nil, "signaling.rejoin_window"},
		{"door offline too soon", "signaling:\n  door_offline_after: 30s\n", nil, "signaling.door_offline_after"},
		{"door offline too late", "signaling:\n  door_offline_after: 25h\n", nil, "signaling.door_offline_after"},
		// The hub would take each of these 0s for its default, and refuse
		// the others naming no key; seed and admin, which start no hub,
		// would accept them all.
		{"hello timeout off", "signaling:\n  hello_timeout: 0s\n", nil, "signaling.hello_timeout"},
		{"negative hello timeout", "signaling:\n  hello_timeout: -1s\n", nil, "signaling.hello_timeout"},
		{"heartbeat from env off", "", []string{"FOYER_SIGNALING_HEARTBEAT=0s"}, "signaling.heartbeat"},
		{"heartbeat under 1s", "signaling:\n  heartbeat: 999ms\n", nil, "signaling.heartbeat"},
		{"send queue too short", "signaling:\n  send_queue: 7\n", nil, "signaling.send_queue"},
		{"message rate off", "signaling:\n  message_rate: 0\n", nil, "signaling.message_rate"},
		{"message burst zero", "signaling:\n  message_burst: 0\n", nil, "signaling.message_burst"},
		{"negative call rate", "signaling:\n  call_rate: -0.5\n", nil, "signaling.call_rate"},
		{"call burst zero", "signaling:\n  call_burst: 0\n", nil, "signaling.call_burst"},
		{"bad media batch", "media:\n  udp_batch_write: 16\n", nil, "udp_mux_port"},
		// Each of these would otherwise start a node that differs silently
		// from what its operator wrote: an empty listen takes a random port,
		// an empty data_dir puts foyer.db in the working directory, a
		// negative drain_timeout cuts every call at SIGTERM, a timeout of 0
		// turns the slow-client guard off, public_url goes into e-mailed
		// links, a second YAML document's keys would be dropped, and
		// FOYER_DRAIN_TIMEOUT=60 (no unit) would read as 0.
		{"empty listen", "listen: \"\"\n", nil, "listen must not be empty"},
		{"no data_dir and no redis", "data_dir: \"\"\n", nil, "data_dir must be set"},
		{"lease ttl too short", "redis:\n  lease_ttl: 2s\n", nil, "redis.lease_ttl"},
		{"negative drain", "drain_timeout: -1s\n", nil, "drain_timeout"},
		{"header timeout off", "http:\n  read_header_timeout: 0s\n", nil, "http.read_header_timeout"},
		{"idle timeout off", "http:\n  idle_timeout: 0s\n", nil, "http.idle_timeout"},
		{"upgrade burst zero", "signaling:\n  upgrade_burst: 0\n", nil, "signaling.upgrade_burst"},
		{"negative upgrade rate", "signaling:\n  upgrade_rate: -1\n", nil, "signaling.upgrade_rate"},
		{"bad node id", "redis:\n  node_id: Node_1\n", nil, "redis.node_id"},
		{"node id too long", "redis:\n  node_id: " + strings.Repeat("a", 33) + "\n", nil, "redis.node_id"},
		{"bad trusted proxy", "signaling:\n  trusted_proxies: [10.0.0.0/33]\n", nil, "signaling.trusted_proxies"},
		{"public url not http", "public_url: ftp://foyer.example.com\n", nil, "public_url"},
		{"public url without host", "public_url: \"https:///reset\"\n", nil, "public_url"},
		{"bad turn relay ip", "turn:\n  relay_ip: foyer.example.com\n", nil, "turn.relay_ip"},
		{"two documents", "listen: \":9000\"\n---\nturn:\n  secret: lost\n", nil, "one YAML document"},
		{"bad second document", "listen: \":9000\"\n---\nturn: [\n", nil, "line 3"},
		{"env duration without unit", "", []string{"FOYER_DRAIN_TIMEOUT=60"}, "FOYER_DRAIN_TIMEOUT"},
		{"env bad int", "", []string{"FOYER_SIGNALING_SEND_QUEUE=64x"}, "FOYER_SIGNALING_SEND_QUEUE"},
		{"env bad float", "", []string{"FOYER_SIGNALING_CALL_RATE=fast"}, "FOYER_SIGNALING_CALL_RATE"},
		// 70000 and 70001 would wrap to 4464 and 4465 in a uint16: valid, and wrong.
		{"env port out of range", "", []string{"FOYER_TURN_RELAY_PORT_MIN=70000", "FOYER_TURN_RELAY_PORT_MAX=70001"}, "FOYER_TURN_RELAY_PORT_MIN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := loadConfig(writeFile(t, "c.yaml", tc.file), tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %q, got %v", tc.want, err)
			}
		})
	}
}

// TestConfigAcceptsDocumentedValues: each value docs/operations.md offers
// loads, the bounds included; a bound off by one, or a value left out of a
// list, would stop a node its operator configured as documented.
func TestConfigAcceptsDocumentedValues(t *testing.T) {
	cases := []struct{ name, file string }{
		{"rejoin window 1s", "signaling:\n  rejoin_window: 1s\n"},
		{"rejoin window 2m", "signaling:\n  rejoin_window: 2m\n"},
		{"door offline 1m", "signaling:\n  door_offline_after: 1m\n"},
		{"door offline 24h", "signaling:\n  door_offline_after: 24h\n"},
		{"lease ttl 3s", "redis:\n  lease_ttl: 3s\n"},
		{"drain timeout 0", "drain_timeout: 0s\n"},
		{"upgrade limit off", "signaling:\n  upgrade_rate: 0\n  upgrade_burst: 0\n"},
		{"heartbeat 1s", "signaling:\n  heartbeat: 1s\n"},
		{"hello timeout 1ms", "signaling:\n  hello_timeout: 1ms\n"},
		{"send queue 8", "signaling:\n  send_queue: 8\n"},
		{"bursts of 1, slow rates", "signaling:\n  message_rate: 0.1\n  message_burst: 1\n  call_rate: 0.01\n  call_burst: 1\n"},
		{"node id", "redis:\n  node_id: node-1\n"},
		{"https public url", "public_url: https://foyer.example.com\n"},
		{"log level debug", "log_level: debug\n"},
		{"log level info", "log_level: info\n"},
		{"log level warn", "log_level: warn\n"},
		{"log level error", "log_level: error\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := loadConfig(writeFile(t, "c.yaml", tc.file), nil); err != nil {
				t.Fatalf("refused %q: %v", tc.file, err)
			}
		})
	}
}

// TestConfigEnvListSkipsEmpty: a list from the environment drops empty
// entries, so FOYER_REDIS_CLUSTER_ADDRS= (set empty, as templates do) keeps
// the node on its embedded store instead of a Redis Cluster at "", and a
// stray comma adds no empty origin.
func TestConfigEnvListSkipsEmpty(t *testing.T) {
	cfg, _, err := loadConfig("", []string{"FOYER_REDIS_CLUSTER_ADDRS=", "FOYER_ALLOWED_ORIGINS=https://a.example, ,https://b.example,"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.ClusterAddrs != nil {
		t.Fatalf("cluster addrs %q from an empty variable", cfg.Redis.ClusterAddrs)
	}
	if want := []string{"https://a.example", "https://b.example"}; !reflect.DeepEqual(cfg.AllowedOrigins, want) {
		t.Fatalf("allowed origins %q, want %q", cfg.AllowedOrigins, want)
	}
}

// TestTrustedProxyAddress: a single address in signaling.trusted_proxies
// trusts that address only, IPv4 and IPv6 alike, never its neighbours,
// whose X-Forwarded-For would otherwise choose the rate limit's client.
func TestTrustedProxyAddress(t *testing.T) {
	prefixes, err := SignalingConfig{TrustedProxies: []string{"192.0.2.1", "2001:db8::1"}}.trustedProxies()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr    string
		trusted bool
	}{{"192.0.2.1", true}, {"192.0.2.2", false}, {"2001:db8::1", true}, {"2001:db8::2", false}, {"2001:db8:1::1", false}} {
		trusted := false
		for _, p := range prefixes {
			trusted = trusted || p.Contains(netip.MustParseAddr(c.addr))
		}
		if trusted != c.trusted {
			t.Errorf("%s trusted %v, want %v (prefixes %v)", c.addr, trusted, c.trusted, prefixes)
		}
	}
}

// TestShowConfig: `foyer config` prints what serve would run with (the
// file, the environment over it, the flags over both), which loads back as
// the same configuration but for its secrets, which it never shows; a
// configuration serve refuses it refuses, naming the key.
func TestShowConfig(t *testing.T) {
	file := writeFile(t, "foyer.yaml", `listen: ":9000"
turn:
  secret: turn-secret
smtp:
  host: mail.example.com
  password: mail-secret
redis:
  url: redis://foyer:redis-secret@10.0.0.5:6379/0
signaling:
  heartbeat: 5s
`)
	t.Setenv("FOYER_SIGNALING_SEND_QUEUE", "128")
	var out, errOut bytes.Buffer
	if code := run([]string{"config", "--config", file, "--data-dir", "/var/lib/foyer"}, &out, &errOut); code != 0 {
		t.Fatalf("foyer config exited %d: %s", code, errOut.String())
	}
	for _, secret := range []string{"turn-secret", "mail-secret", "redis-secret"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("foyer config shows %q:\n%s", secret, out.String())
		}
	}
	shown, _, err := loadConfig(writeFile(t, "shown.yaml", out.String()), nil)
	if err != nil {
		t.Fatalf("what foyer config printed does not load: %v\n%s", err, out.String())
	}
	want, _, err := loadConfig(file, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	want.DataDir = "/var/lib/foyer"
	want = want.redacted()
	if want.TURN.Secret != redacted || want.SMTP.Password != redacted || want.Redis.URL != "redis://foyer:"+redacted+"@10.0.0.5:6379/0" ||
		want.Signaling.SendQueue != 128 || want.Signaling.Heartbeat != 5*time.Second {
		t.Fatalf("the expected configuration is not what the test sets: %+v", want)
	}
	nilEmptySlices(reflect.ValueOf(&shown).Elem())
	nilEmptySlices(reflect.ValueOf(&want).Elem())
	if !reflect.DeepEqual(shown, want) {
		t.Fatalf("foyer config shows\n%+v\nwant\n%+v", shown, want)
	}

	out.Reset()
	errOut.Reset()
	bad := writeFile(t, "bad.yaml", "signaling:\n  heartbeat: 500ms\n")
	if code := run([]string{"config", "--config", bad}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "signaling.heartbeat") || out.Len() != 0 {
		t.Fatalf("a refused configuration: exit %d, stdout %q, stderr %q; want 1, nothing, the key named", code, out.String(), errOut.String())
	}
}

// TestConfigAdvisories: a configuration that works but most likely not as
// meant gets an advice naming the keys to change; the defaults and the
// settings the advice asks for get none.
func TestConfigAdvisories(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string // a word of each advice, in order
	}{
		{"defaults", "", nil},
		{"https with secure cookies", "public_url: https://intercom.example.com\nsecure_cookies: true\n", nil},
		{"https without secure cookies", "public_url: https://intercom.example.com\n", []string{"secure_cookies"}},
		{"smtp password over tls", "smtp:\n  host: mail.example.com\n  username: foyer\n  password: p\n", nil},
		{"smtp password in clear", "smtp:\n  host: mail.example.com\n  username: foyer\n  password: p\n  tls: none\n", []string{"smtp.tls"}},
		{"smtp without login in clear", "smtp:\n  host: relay.example.com\n  tls: none\n", nil},
		{"both", "public_url: https://intercom.example.com\nsmtp:\n  host: mail.example.com\n  username: foyer\n  tls: none\n", []string{"secure_cookies", "smtp.tls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := loadConfig(writeFile(t, "c.yaml", tc.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.advisories()
			if len(got) != len(tc.want) {
				t.Fatalf("advisories %q, want %d naming %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("advice %q does not name %q", got[i], w)
				}
			}
		})
	}
	var out, errOut bytes.Buffer
	file := writeFile(t, "https.yaml", "public_url: https://intercom.example.com\n")
	if code := run([]string{"config", "--config", file}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "warning: public_url is https but secure_cookies is false") {
		t.Fatalf("foyer config: exit %d, stderr %q; want 0 and the advice as a warning", code, errOut.String())
	}
}
