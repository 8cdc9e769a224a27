package workers

import (
	"sync/atomic"
	"testing"
)

func TestForEachCallsEachOnceWithinTheBound(t *testing.T) {
	for _, c := range []struct{ n, workers int }{{0, 4}, {1, 4}, {5, 1}, {100, 0}, {100, 7}} {
		calls := make([]int32, c.n)
		var running, peak int32
		ForEach(c.n, c.workers, func(i int) {
			r := atomic.AddInt32(&running, 1)
			for p := atomic.LoadInt32(&peak); r > p && !atomic.CompareAndSwapInt32(&peak, p, r); p = atomic.LoadInt32(&peak) {
			}
			atomic.AddInt32(&calls[i], 1)
			atomic.AddInt32(&running, -1)
		})
		for i, n := range calls {
			if n != 1 {
				t.Errorf("n=%d workers=%d: item %d called %d times", c.n, c.workers, i, n)
			}
		}
		if limit := int32(max(c.workers, 1)); peak > limit {
			t.Errorf("n=%d workers=%d: %d calls at once", c.n, c.workers, peak)
		}
	}
}
