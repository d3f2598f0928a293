package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// seedTimeout bounds `foyer seed`; tens of thousands of devices take seconds.
const seedTimeout = 5 * time.Minute

// seedOutput is what `foyer seed` prints (DESIGN.md, provisioning file).
type seedOutput struct {
	Tokens map[string]string `json:"tokens"`
}

// prepareLayout returns the devices and door stations to drive: read from
// --tokens, or provisioned now with `foyer seed`.
func prepareLayout(ctx context.Context, o *options, log *slog.Logger) (*layout, error) {
	if o.tokensPath != "" {
		data, err := os.ReadFile(o.tokensPath)
		if err != nil {
			return nil, err
		}
		var out seedOutput
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("%s: not the JSON `foyer seed` prints: %w", o.tokensPath, err)
		}
		l, err := layoutFromTokens(out.Tokens)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.tokensPath, err)
		}
		if o.scenario == "media" && !o.given["devices"] && !o.given["doors"] {
			return l.takeCalls(o.calls)
		}
		devices, doors := l.counts()
		if o.given["devices"] {
			devices = o.devices
		}
		if o.scenario != "storm" && o.scenario != "media" && !o.given["doors"] {
			doors = 0
		} else if o.given["doors"] {
			doors = o.doors
		}
		return l.take(devices, doors)
	}
	l := newLayout(o.devices, o.doors, o.idsPerSite)
	tokens, err := seedLayout(ctx, o, l, log)
	if err != nil {
		return nil, err
	}
	for _, s := range l.Sites {
		for i := range s.Doors {
			s.Doors[i].Token = tokens[s.Doors[i].Name]
		}
		for _, id := range s.IDs {
			for i := range id.Devices {
				id.Devices[i].Token = tokens[id.Devices[i].Name]
			}
		}
	}
	return l, nil
}

// seedLayout writes the provisioning file and applies it with `foyer seed`.
func seedLayout(ctx context.Context, o *options, l *layout, log *slog.Logger) (map[string]string, error) {
	path := o.provisionPath
	if path == "" {
		dir, err := os.MkdirTemp("", "foyer-load")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "provision.yaml")
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := l.writeProvision(f); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	args := []string{"seed"}
	if o.configPath != "" {
		args = append(args, "--config", o.configPath)
	}
	if o.dataDir != "" {
		args = append(args, "--data-dir", o.dataDir)
	}
	args = append(args, path)
	ctx, cancel := context.WithTimeout(ctx, seedTimeout)
	defer cancel()
	devices, doors := l.counts()
	log.Info("seeding", "foyer", o.foyerBin, "devices", devices, "doors", doors, "sites", len(l.Sites))
	start := time.Now()
	cmd := exec.CommandContext(ctx, o.foyerBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %v: %w: %s", o.foyerBin, args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	var printed seedOutput
	if err := json.Unmarshal(out, &printed); err != nil {
		return nil, fmt.Errorf("foyer seed printed something that is not its tokens JSON: %w", err)
	}
	log.Info("seeded", "tokens", len(printed.Tokens), "took", time.Since(start).Round(time.Millisecond))
	if o.tokensOut != "" {
		if err := os.WriteFile(o.tokensOut, out, 0o600); err != nil {
			return nil, err
		}
	}
	return printed.Tokens, nil
}
