package lab

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPollReturnsWhenTheProblemIsGone(t *testing.T) {
	calls := 0
	err := poll(time.Minute, time.Millisecond, func() (string, error) {
		calls++
		if calls < 3 {
			return fmt.Sprintf("not yet (%d)", calls), nil
		}
		return "", nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("poll: %v after %d calls, want nil after 3", err, calls)
	}
}

func TestPollTimesOutWithTheLastProblem(t *testing.T) {
	calls := 0
	start := time.Now()
	err := poll(50*time.Millisecond, 10*time.Millisecond, func() (string, error) {
		calls++
		return fmt.Sprintf("worker-%d lacks its route", calls), nil
	})
	took := time.Since(start)
	if !timedOut(err) {
		t.Fatalf("poll: %v, want a timeout", err)
	}
	want := fmt.Sprintf("after 50ms: worker-%d lacks its route", calls)
	if err.Error() != want {
		t.Errorf("poll: %q, want %q (the last problem)", err, want)
	}
	if calls < 3 || took < 50*time.Millisecond || took > time.Second {
		t.Errorf("poll called check %d times in %s: want it to keep trying for the whole limit, every interval", calls, took)
	}
	if wrapped := fmt.Errorf("routes: %w", err); !timedOut(wrapped) {
		t.Errorf("a wrapped timeout is not recognised: %v", wrapped)
	}
}

func TestPollStopsAtACheckError(t *testing.T) {
	broken := errors.New("kubesalt status show: no such file")
	calls := 0
	err := poll(time.Minute, time.Millisecond, func() (string, error) {
		calls++
		return "ignored", broken
	})
	if !errors.Is(err, broken) || timedOut(err) || calls != 1 {
		t.Fatalf("poll: %v after %d calls, want the check's error at once", err, calls)
	}
}

func TestPollChecksAtLeastOnce(t *testing.T) {
	calls := 0
	err := poll(0, time.Hour, func() (string, error) {
		calls++
		return "", nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("poll with no time: %v after %d calls", err, calls)
	}
	if err := poll(0, time.Hour, func() (string, error) { return "down", nil }); !timedOut(err) || !strings.Contains(err.Error(), "down") {
		t.Fatalf("poll with no time and a problem: %v", err)
	}
}
