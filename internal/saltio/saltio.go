// Package saltio is the JSON contract between Salt and the kubesalt binaries
// (docs/architecture.md): one object on stdout with the keys of a Salt state return, and
// exit codes 0 (done or nothing needed), 1 (failed), 2 (bad usage or input).
package saltio

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Exit codes of every kubesalt binary.
const (
	ExitOK       = 0
	ExitFailed   = 1
	ExitBadInput = 2
)

// Result is what a binary prints. Result is true (done), false (failed) or
// nil (test mode: changes would be made).
type Result struct {
	Result  *bool          `json:"result"`
	Changes map[string]any `json:"changes"`
	Comment string         `json:"comment"`
	Data    any            `json:"data,omitempty"`
}

// Outcome builds a Result from what happened: failed wins, then test mode
// with pending changes gives nil, else true.
func Outcome(test, changed, failed bool) *bool {
	switch {
	case failed:
		return Bool(false)
	case test && changed:
		return nil
	default:
		return Bool(true)
	}
}

// Bool returns a pointer to b.
func Bool(b bool) *bool { return &b }

// ExitCode maps a Result to the process exit code.
func (r Result) ExitCode() int {
	if r.Result != nil && !*r.Result {
		return ExitFailed
	}
	return ExitOK
}

// Write prints r as one JSON object followed by a newline.
func Write(w io.Writer, r Result) error {
	if r.Changes == nil {
		r.Changes = map[string]any{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// UsageError marks bad usage or bad input: exit code 2, nothing changed.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// BadInput wraps err as a UsageError.
func BadInput(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{Err: err}
}

// BadInputf formats a UsageError.
func BadInputf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Fail prints a failed Result for err and returns the exit code: 2 for a
// UsageError, 1 otherwise. The message also goes to stderr for people.
func Fail(stdout, stderr io.Writer, err error) int {
	code := ExitFailed
	var ue *UsageError
	if errors.As(err, &ue) {
		code = ExitBadInput
	}
	fmt.Fprintln(stderr, "error:", err)
	_ = Write(stdout, Result{Result: Bool(false), Comment: err.Error()})
	return code
}

// ReadInput reads the named file, or stdin when name is "" or "-".
func ReadInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "" || name == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, BadInputf("reading %s: %v", name, err)
	}
	return b, nil
}
