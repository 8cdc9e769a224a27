package lab

import (
	"errors"
	"fmt"
	"time"
)

// poll calls check at once and then every interval until check reports no
// problem (""), or returns an error, which ends the wait with that error,
// or limit has passed: then the error is a *timeoutError naming the last
// problem. Every wait of the lab goes through it.
func poll(limit, interval time.Duration, check func() (problem string, err error)) error {
	deadline := time.Now().Add(limit)
	for {
		problem, err := check()
		if err != nil {
			return err
		}
		if problem == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return &timeoutError{limit, problem}
		}
		time.Sleep(interval)
	}
}

// timeoutError is poll's error when limit passed and a problem was left.
type timeoutError struct {
	limit   time.Duration
	problem string
}

func (e *timeoutError) Error() string { return fmt.Sprintf("after %s: %s", e.limit, e.problem) }

// timedOut reports whether err is poll giving up, not a check's failure.
func timedOut(err error) bool {
	var t *timeoutError
	return errors.As(err, &t)
}
