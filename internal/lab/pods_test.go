package lab

import "testing"

// The kernel's neighbor table: its limit and the entries it holds, as the
// pod check reads them before each sender's row.
func TestNeighborTable(t *testing.T) {
	limit, used, err := neighborTable()
	if err != nil {
		t.Skipf("no neighbor table counters here: %v", err)
	}
	if limit <= 0 || used < 0 {
		t.Fatalf("limit %d, used %d", limit, used)
	}
}
