package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/foyer-intercom/foyer/directory"
)

// storeFile is the embedded store's file inside data_dir.
const storeFile = "foyer.db"

// openStore opens the directory the configuration names. The backend is
// chosen here, once.
func openStore(cfg Config) (directory.Store, error) {
	if cfg.Redis.URL != "" || len(cfg.Redis.ClusterAddrs) > 0 {
		return nil, errors.New("the Redis store is not available in this build yet; remove redis settings to use the embedded store")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data_dir: %w", err)
	}
	path := filepath.Join(cfg.DataDir, storeFile)
	s, err := directory.OpenBolt(path)
	if errors.Is(err, directory.ErrLocked) {
		return nil, fmt.Errorf("%s is in use by another process (a running foyer serve?): stop it first, or use its admin API: %w", path, err)
	}
	return s, err
}
