package main

import (
	"fmt"
	"io"
	"net/url"

	"gopkg.in/yaml.v3"
)

// redacted stands in for a secret in what `foyer config` prints.
const redacted = "REDACTED"

// showConfig is `foyer config`: it loads the configuration as serve does
// (the defaults, the file, the environment, the flags), checks it, and
// prints it as YAML with its secrets redacted: what a node started the
// same way runs with. A configuration serve would refuse is refused here,
// with the same message; the advisories serve would log are warnings on
// stderr.
func showConfig(args []string, stdout, stderr io.Writer) error {
	fs, flags := commandFlags("config", stderr, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q; usage: foyer config [--config FILE] [--listen ADDR] [--data-dir DIR]", fs.Arg(0))
	}
	cfg, err := flags.loadWarning(stderr)
	if err != nil {
		return err
	}
	for _, a := range cfg.advisories() {
		fmt.Fprintf(stderr, "foyer config: warning: %s\n", a)
	}
	enc := yaml.NewEncoder(stdout)
	enc.SetIndent(2) // as configs/foyer.example.yaml
	if err := enc.Encode(cfg.redacted()); err != nil {
		return err
	}
	return enc.Close()
}

// redacted returns c with its secrets replaced: the TURN secret, the SMTP
// password, and a password in the Redis URL. An empty secret stays empty
// (it says "none set", which is no secret).
func (c Config) redacted() Config {
	if c.TURN.Secret != "" {
		c.TURN.Secret = redacted
	}
	if c.SMTP.Password != "" {
		c.SMTP.Password = redacted
	}
	if u, err := url.Parse(c.Redis.URL); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redacted)
			c.Redis.URL = u.String()
		}
	}
	return c
}
