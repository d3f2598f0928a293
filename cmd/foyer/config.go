package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/foyer-intercom/foyer/media"
	"github.com/foyer-intercom/foyer/signaling"
	"github.com/foyer-intercom/foyer/turn"
)

// Config is the whole configuration file (DESIGN.md, binding key names).
// Every key has a default, so no file is needed. Environment variables
// override the file, named FOYER_ + the key path in capitals with _ for dots
// (FOYER_REDIS_URL, FOYER_TURN_SECRET); flags override both.
type Config struct {
	// Listen is the HTTP address: /v1/signal, the API, web pages, /healthz, /readyz.
	Listen string `yaml:"listen"`
	// DataDir holds the embedded store (foyer.db), used when no Redis is configured.
	DataDir string        `yaml:"data_dir"`
	Redis   RedisConfig   `yaml:"redis"`
	TURN    turn.Config   `yaml:"turn"`
	Metrics MetricsConfig `yaml:"metrics"`
	// Media is where calls' audio and video are received and sent (WebRTC).
	Media media.Config `yaml:"media"`
	// Signaling tunes the WebSocket protocol; the defaults suit almost everyone.
	Signaling SignalingConfig `yaml:"signaling"`
	// HTTP are the HTTP server's timeouts.
	HTTP HTTPConfig `yaml:"http"`
	// DrainTimeout is how long SIGTERM lets active calls finish before ending them.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// PublicURL is where people reach this deployment, for links in
	// e-mails. Default http://localhost:8080.
	PublicURL string `yaml:"public_url"`
	// SMTP sends invitations and notices; with no host they are written to
	// <data_dir>/outbox instead (shown in the portal to operators).
	SMTP SMTPConfig `yaml:"smtp"`
	// SecureCookies marks the portal's session cookie Secure: set it when
	// the portal is served over HTTPS (a TLS-terminating proxy).
	SecureCookies bool `yaml:"secure_cookies"`
	// AllowedOrigins may send cookie-authenticated API writes besides the
	// portal's own origin.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// SMTPConfig is the outgoing mail server. Empty host: use the outbox.
type SMTPConfig struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	From     string `yaml:"from"`
	// TLS is starttls (default), tls (implicit, port 465) or none.
	TLS     string        `yaml:"tls"`
	Timeout time.Duration `yaml:"timeout"`
}

// RedisConfig joins the node to a cluster sharing Redis. Empty: single node.
type RedisConfig struct {
	URL          string   `yaml:"url"`
	ClusterAddrs []string `yaml:"cluster_addrs"`
	// NodeID names this node in call IDs and presence; empty: random at
	// start. Letters a-z, digits and -.
	NodeID string `yaml:"node_id"`
	// LeaseTTL is how long a node that died without a word is still
	// believed to hold its devices.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
}

// MetricsConfig places /metrics; empty Listen serves it on the main
// listener. With its own Listen, /metrics is served there only, and Pprof
// adds Go's profiler (/debug/pprof/) beside it: an operator's port, never
// the public one.
type MetricsConfig struct {
	Listen string `yaml:"listen"`
	Pprof  bool   `yaml:"pprof"`
}

// SignalingConfig are the protocol timings and limits.
type SignalingConfig struct {
	HelloTimeout time.Duration `yaml:"hello_timeout"`
	Heartbeat    time.Duration `yaml:"heartbeat"`
	SendQueue    int           `yaml:"send_queue"`
	// RejoinWindow: how long an answered call waits for the device that
	// answered, or the door station, to come back after its connection
	// closed.
	RejoinWindow time.Duration `yaml:"rejoin_window"`
	// DoorOfflineAfter: how long a door station must be connected to no
	// node before its site's managers are e-mailed that it is offline.
	DoorOfflineAfter time.Duration `yaml:"door_offline_after"`
	// MessageRate (per second) and MessageBurst bound what one connection
	// may send; CallRate and CallBurst the calls one door station places.
	MessageRate  float64 `yaml:"message_rate"`
	MessageBurst int     `yaml:"message_burst"`
	CallRate     float64 `yaml:"call_rate"`
	CallBurst    int     `yaml:"call_burst"`
	// UpgradeRate (per second) and UpgradeBurst bound the connections one
	// client address may open; 0 turns the limit off.
	UpgradeRate  float64 `yaml:"upgrade_rate"`
	UpgradeBurst int     `yaml:"upgrade_burst"`
	// TrustedProxies (CIDRs) may name the client in X-Forwarded-For.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// HTTPConfig are the HTTP server's timeouts.
type HTTPConfig struct {
	// ReadHeaderTimeout closes connections that do not finish their
	// request headers in time (half-open and slow-loris clients), well
	// before a WebSocket upgrade could start. Default 10 s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle keep-alive connections; upgraded WebSockets
	// have their own heartbeat instead. Default 120 s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// defaultConfig returns the configuration used when nothing is set.
func defaultConfig() Config {
	return Config{
		Listen:  ":8080",
		DataDir: "./data",
		Redis:   RedisConfig{LeaseTTL: 15 * time.Second},
		TURN:    turn.DefaultConfig(),
		Signaling: SignalingConfig{HelloTimeout: 10 * time.Second, Heartbeat: 20 * time.Second, SendQueue: 64, RejoinWindow: 10 * time.Second,
			DoorOfflineAfter: 5 * time.Minute, MessageRate: 20, MessageBurst: 60, CallRate: 0.5, CallBurst: 5, UpgradeRate: 20, UpgradeBurst: 200},
		HTTP:         HTTPConfig{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second},
		DrainTimeout: 60 * time.Second,
		LogLevel:     "info",
		PublicURL:    "http://localhost:8080",
		SMTP:         SMTPConfig{Port: 587, TLS: "starttls", Timeout: 30 * time.Second, From: "foyer <foyer@localhost>"},
	}
}

// ownEnv are foyer's FOYER_ variables that are not configuration keys.
var ownEnv = map[string]bool{
	"FOYER_ADMIN_PASSWORD": true, // admin create-owner's password
}

// warnUnknownEnv tells a command-line user of the FOYER_ variables that
// name no configuration key (loadConfig); serve logs them instead.
func warnUnknownEnv(w io.Writer, command string, names []string) {
	for _, k := range names {
		fmt.Fprintf(w, "foyer %s: warning: %s names no configuration key; ignored\n", command, k)
	}
}

// loadConfig reads path (if not empty) strictly over the defaults, then
// applies environment overrides from env (a list of KEY=VALUE). It returns
// the FOYER_ variables that name no key, for the caller to warn about: other
// tools set FOYER_ variables too, so they are not an error.
func loadConfig(path string, env []string) (Config, []string, error) {
	cfg := defaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, nil, fmt.Errorf("reading the configuration: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // an empty file means all defaults
			return cfg, nil, fmt.Errorf("configuration %s: %w", path, err)
		}
		// The decoder reads one document; the keys of a second one would
		// be dropped without a word.
		var more yaml.Node
		switch err := dec.Decode(&more); {
		case err == nil:
			return cfg, nil, fmt.Errorf("configuration %s: only one YAML document is allowed (line %d starts another)", path, more.Line)
		case !errors.Is(err, io.EOF):
			return cfg, nil, fmt.Errorf("configuration %s: %w", path, err)
		}
	}
	vars := make(map[string]string)
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "FOYER_") {
			vars[k] = v
		}
	}
	if err := applyEnv(reflect.ValueOf(&cfg).Elem(), "FOYER", vars); err != nil {
		return cfg, nil, err
	}
	var unknown []string
	for k := range vars {
		if !ownEnv[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	return cfg, unknown, cfg.validate()
}

// applyEnv walks the config struct; every leaf's env name is prefix + "_" +
// its yaml key in capitals. Used variables are deleted from vars.
func applyEnv(v reflect.Value, prefix string, vars map[string]string) error {
	t := v.Type()
	for i := range t.NumField() {
		key := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		name := prefix + "_" + strings.ToUpper(key)
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			if err := applyEnv(f, name, vars); err != nil {
				return err
			}
			continue
		}
		s, ok := vars[name]
		if !ok {
			continue
		}
		delete(vars, name)
		if err := setFromString(f, s); err != nil {
			return fmt.Errorf("environment variable %s: %w", name, err)
		}
	}
	return nil
}

func setFromString(f reflect.Value, s string) error {
	switch {
	case f.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(s)
	case f.CanFloat():
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		f.SetFloat(x)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case f.CanInt():
		n, err := strconv.ParseInt(s, 10, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetInt(n)
	case f.CanUint():
		n, err := strconv.ParseUint(s, 10, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetUint(n)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		var parts []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		f.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

// validate checks values that no package checks for itself.
func (c Config) validate() error {
	switch {
	case c.Listen == "":
		return errors.New("listen must not be empty")
	case c.Redis.URL == "" && len(c.Redis.ClusterAddrs) == 0 && c.DataDir == "":
		return errors.New("data_dir must be set when no Redis is configured")
	case c.Redis.URL != "" && len(c.Redis.ClusterAddrs) > 0:
		return errors.New("set redis.url or redis.cluster_addrs, not both")
	case c.Redis.NodeID != "" && !signaling.ValidNodeID(c.Redis.NodeID):
		return fmt.Errorf("redis.node_id %q: want 1 to 32 characters of a-z, 0-9 and -", c.Redis.NodeID)
	case c.Redis.LeaseTTL < 3*time.Second:
		return errors.New("redis.lease_ttl must be at least 3s")
	case c.DrainTimeout < 0:
		return errors.New("drain_timeout must not be negative")
	case c.HTTP.ReadHeaderTimeout <= 0 || c.HTTP.IdleTimeout <= 0:
		return errors.New("http.read_header_timeout and http.idle_timeout must be positive")
	case c.Metrics.Pprof && c.Metrics.Listen == "":
		return errors.New("metrics.pprof needs metrics.listen: the profiler is never served on the public listener")
	case c.Signaling.HelloTimeout <= 0:
		return fmt.Errorf("signaling.hello_timeout %s: want more than 0", c.Signaling.HelloTimeout)
	case c.Signaling.Heartbeat < time.Second:
		return fmt.Errorf("signaling.heartbeat %s: want at least 1s", c.Signaling.Heartbeat)
	case c.Signaling.SendQueue < 8:
		return fmt.Errorf("signaling.send_queue %d: want at least 8", c.Signaling.SendQueue)
	case c.Signaling.MessageRate <= 0 || c.Signaling.MessageBurst < 1:
		return fmt.Errorf("signaling.message_rate %g, signaling.message_burst %d: want a rate above 0 and a burst of at least 1", c.Signaling.MessageRate, c.Signaling.MessageBurst)
	case c.Signaling.CallRate <= 0 || c.Signaling.CallBurst < 1:
		return fmt.Errorf("signaling.call_rate %g, signaling.call_burst %d: want a rate above 0 and a burst of at least 1", c.Signaling.CallRate, c.Signaling.CallBurst)
	case c.Signaling.RejoinWindow < time.Second || c.Signaling.RejoinWindow > 2*time.Minute:
		return fmt.Errorf("signaling.rejoin_window %s: want 1s to 2m", c.Signaling.RejoinWindow)
	case c.Signaling.DoorOfflineAfter < time.Minute || c.Signaling.DoorOfflineAfter > 24*time.Hour:
		return fmt.Errorf("signaling.door_offline_after %s: want 1m to 24h", c.Signaling.DoorOfflineAfter)
	case c.Signaling.UpgradeRate < 0 || (c.Signaling.UpgradeRate > 0 && c.Signaling.UpgradeBurst < 1):
		return errors.New("signaling.upgrade_rate must not be negative, and needs signaling.upgrade_burst of at least 1")
	}
	if _, err := c.Signaling.trustedProxies(); err != nil {
		return err
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("public_url %q: want an http:// or https:// URL", c.PublicURL)
	}
	if err := c.Media.Validate(); err != nil {
		return err
	}
	if err := c.TURN.Validate(); err != nil {
		return err
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// advisories are settings that work but that an operator most likely did
// not mean: serve logs each as a warning at start, and foyer config prints
// them. Each names the keys to change.
func (c Config) advisories() []string {
	var out []string
	if u, err := url.Parse(c.PublicURL); err == nil && u.Scheme == "https" && !c.SecureCookies {
		out = append(out, "public_url is https but secure_cookies is false: the portal's session cookie would also be sent over plain http; set secure_cookies: true")
	}
	if c.SMTP.Host != "" && c.SMTP.Username != "" && c.SMTP.TLS == "none" {
		out = append(out, "smtp.username is set with smtp.tls: none: the mail server's password goes unencrypted; use starttls or tls")
	}
	return out
}

// trustedProxies parses signaling.trusted_proxies (CIDRs or single addresses).
func (s SignalingConfig) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range s.TrustedProxies {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("signaling.trusted_proxies: %q is neither a CIDR nor an address", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
