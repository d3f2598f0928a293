package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenBackendChoosesRedis: a configuration naming Redis, by url or by
// cluster_addrs, opens the shared store, never the embedded one; a node
// that quietly fell back to its own foyer.db would serve a directory of its
// own beside the cluster's.
func TestOpenBackendChoosesRedis(t *testing.T) {
	for name, rc := range map[string]RedisConfig{
		"url":     {URL: "redis://127.0.0.1:1"},
		"cluster": {ClusterAddrs: []string{"127.0.0.1:1", "127.0.0.1:2"}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := mustDefault(t)
			cfg.Redis.URL, cfg.Redis.ClusterAddrs = rc.URL, rc.ClusterAddrs
			cfg.DataDir = filepath.Join(t.TempDir(), "data")
			b, err := openBackend(cfg) // opening sends nothing to Redis yet
			if err != nil {
				t.Fatal(err)
			}
			defer b.close()
			if b.rdb == nil {
				t.Fatal("opened the embedded store")
			}
			if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
				t.Fatalf("data_dir was created (%v)", err)
			}
		})
	}
}

// TestDataDirPrivate: the data directory the embedded store creates is
// the server's user's only (0700): it holds foyer.db (accounts, token
// hashes), turn.secret and the mail outbox.
func TestDataDirPrivate(t *testing.T) {
	cfg := mustDefault(t)
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	b, err := openBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.close()
	fi, err := os.Stat(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("data_dir mode %v, want 0700", fi.Mode().Perm())
	}
}
