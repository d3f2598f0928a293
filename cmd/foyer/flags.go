package main

import (
	"flag"
	"io"
	"os"
)

// configFlags are the flags of every command that reads the configuration:
// --config, --data-dir, and for the commands that listen (serve, and
// config, which shows what serve would run with) --listen. Flags override
// the file and the environment.
type configFlags struct {
	command               string // as the user typed it: "seed", "admin restore"
	path, dataDir, listen string
}

// commandFlags returns the flag set of command with the configuration's
// flags on it (--listen when withListen); the command adds its own and
// parses.
func commandFlags(command string, stderr io.Writer, withListen bool) (*flag.FlagSet, *configFlags) {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &configFlags{command: command}
	fs.StringVar(&f.path, "config", "", "configuration file (YAML); optional")
	fs.StringVar(&f.dataDir, "data-dir", "", "embedded store directory (overrides data_dir)")
	if withListen {
		fs.StringVar(&f.listen, "listen", "", "HTTP listen address (overrides listen)")
	}
	return fs, f
}

// load reads the configuration as the command runs with it: the defaults,
// the file, the environment, then the flags. It returns the FOYER_
// variables that name no key, for the caller to warn about.
func (f *configFlags) load() (Config, []string, error) {
	cfg, unknownEnv, err := loadConfig(f.path, os.Environ())
	if err != nil {
		return cfg, unknownEnv, err
	}
	if f.listen != "" {
		cfg.Listen = f.listen
	}
	if f.dataDir != "" {
		cfg.DataDir = f.dataDir
	}
	return cfg, unknownEnv, nil
}

// loadWarning is load for a one-off command: a warning on stderr for each
// FOYER_ variable that names no key.
func (f *configFlags) loadWarning(stderr io.Writer) (Config, error) {
	cfg, unknownEnv, err := f.load()
	warnUnknownEnv(stderr, f.command, unknownEnv)
	return cfg, err
}
