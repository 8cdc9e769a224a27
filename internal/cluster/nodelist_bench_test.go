package cluster

import (
	"encoding/json"
	"fmt"
	"testing"
)

func BenchmarkParseNodeList20000(b *testing.B) {
	type m struct {
		Name     string   `json:"name"`
		IPs      []string `json:"ips"`
		PodCIDRs []string `json:"pod_cidrs"`
	}
	var list []m
	for i := 0; i < 20000; i++ {
		list = append(list, m{fmt.Sprintf("node-%05d", i), []string{fmt.Sprintf("172.17.%d.%d", i>>8, i&255)}, []string{fmt.Sprintf("10.%d.%d.0/24", i>>8, i&255)}})
	}
	data, _ := json.Marshal(map[string]any{"nodes": list})
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if l, err := ParseNodeList(data); err != nil || len(l) != 20000 {
			b.Fatal(err)
		}
	}
}
