package directory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// ProvisionError is a provisioning file refused: the line and the rule
// broken. It wraps ErrInvalid, ErrLimit or ErrConflict.
type ProvisionError struct {
	Line int    // 1-based line of the file
	Msg  string // the rule broken, naming the item
	Err  error  // the sentinel: ErrInvalid, ErrLimit or ErrConflict
}

// Error reads "line 14: call ID "101": a 7th app user …".
func (e *ProvisionError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Unwrap returns the sentinel error of the rule broken.
func (e *ProvisionError) Unwrap() error { return e.Err }

// lineErr builds a ProvisionError at line, wrapping ErrInvalid.
func lineErr(line int, format string, args ...any) *ProvisionError {
	return &ProvisionError{Line: line, Msg: fmt.Sprintf(format, args...), Err: ErrInvalid}
}

// ruleErr builds a ProvisionError at line from a rule's error, keeping its sentinel.
func ruleErr(line int, prefix string, err error) *ProvisionError {
	pe := &ProvisionError{Line: line, Msg: prefix + err.Error(), Err: ErrInvalid}
	for _, s := range []error{ErrLimit, ErrConflict, ErrNotFound} {
		if errors.Is(err, s) {
			pe.Err = s
		}
	}
	return pe
}

// yamlLine finds the line in a yaml.v3 syntax error message; yamlPrefix is
// the prefix it puts before its messages.
var (
	yamlLine   = regexp.MustCompile(`line (\d+)`)
	yamlPrefix = regexp.MustCompile(`^yaml:\s*:?\s*`)
)

// parseYAML decodes exactly one YAML document into a node tree, turning
// every failure into a ProvisionError with a line.
func parseYAML(data []byte) (root *yaml.Node, err error) {
	if line, msg := badBytes(data); line > 0 {
		return nil, lineErr(line, "%s", msg)
	}
	defer func() {
		// yaml.v3 recovers its own errors; anything else is a decoder bug
		// that must not take the node down with it.
		if r := recover(); r != nil {
			root, err = nil, lineErr(1, "the YAML decoder failed on this file: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, lineErr(1, "the file is empty; it needs a sites list")
		}
		return nil, yamlErr(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlErr(err)
		}
		return nil, lineErr(next.Line, "only one YAML document is allowed")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, lineErr(doc.Line, "the file needs a sites list")
	}
	return doc.Content[0], nil
}

// yamlErr turns a yaml.v3 error into a ProvisionError.
func yamlErr(err error) *ProvisionError {
	line := 1
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil {
			line = n
		}
	}
	msg := yamlLine.ReplaceAllString(err.Error(), "")
	msg = yamlPrefix.ReplaceAllString(msg, "")
	return lineErr(line, "not valid YAML: %s", msg)
}

// badBytes finds what yaml.v3 refuses without naming a line: invalid UTF-8
// and control characters other than tab, newline and carriage return.
func badBytes(data []byte) (line int, msg string) {
	line = 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, "the file is not valid UTF-8"
		case r == '\n':
			line++
		case r < 0x20 && r != '\t' && r != '\r', r == 0x7f, r >= 0x80 && r < 0xa0 && r != 0x85,
			r == 0xfeff && i > 0, r >= 0xfffe && r <= 0xffff:
			return line, fmt.Sprintf("control character %U is not allowed", r)
		}
		i += size
	}
	return 0, ""
}

// field is one key of a mapping with the node of its value.
type field struct {
	key   string
	line  int
	value *yaml.Node
}

// mapping returns the fields of a mapping node, refusing aliases, keys that
// are not plain strings, duplicate keys and keys not in known.
func mapping(n *yaml.Node, what string, known ...string) ([]field, error) {
	if err := notAlias(n); err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, lineErr(n.Line, "%s must be a mapping of keys to values", what)
	}
	seen := make(map[string]int, len(n.Content)/2)
	out := make([]field, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if err := notAlias(k); err != nil {
			return nil, err
		}
		if k.Kind != yaml.ScalarNode {
			return nil, lineErr(k.Line, "%s: keys must be plain words", what)
		}
		if first, dup := seen[k.Value]; dup {
			return nil, lineErr(k.Line, "%s: key %q is repeated (first at line %d)", what, k.Value, first)
		}
		seen[k.Value] = k.Line
		ok := false
		for _, want := range known {
			ok = ok || k.Value == want
		}
		if !ok {
			return nil, lineErr(k.Line, "%s: unknown key %q (known keys: %v)", what, k.Value, known)
		}
		if err := notAlias(v); err != nil {
			return nil, err
		}
		out = append(out, field{key: k.Value, line: k.Line, value: v})
	}
	return out, nil
}

// notAlias refuses YAML aliases (*name): the file format has no use for
// them, and refusing them rules out alias bombs.
func notAlias(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		return lineErr(n.Line, "YAML aliases (*%s) are not allowed", n.Value)
	}
	return nil
}

// sequence returns the items of a sequence node.
func sequence(n *yaml.Node, what string) ([]*yaml.Node, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, lineErr(n.Line, "%s must be a list", what)
	}
	for _, item := range n.Content {
		if err := notAlias(item); err != nil {
			return nil, err
		}
	}
	return n.Content, nil
}

// scalar returns the text of a scalar node; null is the empty string.
func scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", lineErr(n.Line, "%s must be a single value, not a list or mapping", what)
	}
	if n.ShortTag() == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

// seconds returns a whole number of seconds.
func seconds(n *yaml.Node, what string) (int, error) {
	s, err := scalar(n, what)
	if err != nil {
		return 0, err
	}
	v, convErr := strconv.Atoi(s)
	if convErr != nil || n.ShortTag() != "!!int" {
		return 0, lineErr(n.Line, "%s must be a whole number of seconds, not %q", what, s)
	}
	return v, nil
}

// boolean returns true or false.
func boolean(n *yaml.Node, what string) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		return false, lineErr(n.Line, "%s must be true or false", what)
	}
	return b, nil
}
