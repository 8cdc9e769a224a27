// Package dnsload sends one DNS query to one server over UDP, again and
// again from a few workers for a bounded time, and counts the answers: a
// measurement of the queries per second the server answers.
package dnsload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Options is one run.
type Options struct {
	Server      string        // host:port
	Name        string        // the query name; a trailing dot is added
	Type        string        // A or AAAA
	Duration    time.Duration // how long to send
	Concurrency int           // queries in flight, one UDP socket each
	Timeout     time.Duration // per query
}

// Result is what a run saw.
type Result struct {
	Server   string         `json:"server"`
	Name     string         `json:"name"`
	Sent     int            `json:"sent"`
	Answered int            `json:"answered"`
	Timeouts int            `json:"timeouts"`
	Rcodes   map[string]int `json:"rcodes"`
	Seconds  float64        `json:"seconds"`
	QPS      float64        `json:"qps"`
	// Latencies of the answered queries, in milliseconds.
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
}

// Check validates o, naming the flag to fix.
func (o Options) Check() error {
	var problems []string
	if _, _, err := net.SplitHostPort(o.Server); err != nil {
		problems = append(problems, fmt.Sprintf("--server %q: give host:port, e.g. 10.32.0.10:53", o.Server))
	}
	if _, err := dnsmessage.NewName(strings.TrimSuffix(o.Name, ".") + "."); err != nil || strings.Trim(o.Name, ".") == "" {
		problems = append(problems, fmt.Sprintf("--name %q: give a DNS name, e.g. kubernetes.default.svc.cluster.local", o.Name))
	}
	if _, err := qtype(o.Type); err != nil {
		problems = append(problems, err.Error())
	}
	if o.Duration <= 0 || o.Duration > 5*time.Minute {
		problems = append(problems, fmt.Sprintf("--duration %s: give 1s to 5m", o.Duration))
	}
	if o.Concurrency < 1 || o.Concurrency > 1000 {
		problems = append(problems, fmt.Sprintf("--concurrency %d: give 1 to 1000", o.Concurrency))
	}
	if o.Timeout <= 0 {
		problems = append(problems, fmt.Sprintf("--timeout %s: give a positive duration, e.g. 1s", o.Timeout))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func qtype(t string) (dnsmessage.Type, error) {
	switch strings.ToUpper(t) {
	case "A", "":
		return dnsmessage.TypeA, nil
	case "AAAA":
		return dnsmessage.TypeAAAA, nil
	}
	return 0, fmt.Errorf("--type %q: use A or AAAA", t)
}

// Run sends o.Name to o.Server until o.Duration has passed (or ctx ends).
func Run(ctx context.Context, o Options) (Result, error) {
	if err := o.Check(); err != nil {
		return Result{}, err
	}
	t, _ := qtype(o.Type)
	name := dnsmessage.MustNewName(strings.TrimSuffix(o.Name, ".") + ".")
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	type tally struct {
		sent, answered, timeouts int
		rcodes                   map[string]int
		lat                      []time.Duration
		err                      error
	}
	tallies := make([]tally, o.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func(tl *tally, id uint16) {
			defer wg.Done()
			tl.rcodes = map[string]int{}
			conn, err := net.Dial("udp", o.Server)
			if err != nil {
				tl.err = err
				return
			}
			defer conn.Close()
			buf := make([]byte, 1500)
			for seq := uint16(0); ctx.Err() == nil; seq++ {
				qid := id<<10 | seq&0x3ff
				q := dnsmessage.Message{
					Header:    dnsmessage.Header{ID: qid, RecursionDesired: true},
					Questions: []dnsmessage.Question{{Name: name, Type: t, Class: dnsmessage.ClassINET}},
				}
				packed, _ := q.Pack()
				sent := time.Now()
				if _, err := conn.Write(packed); err != nil {
					tl.err = err
					return
				}
				tl.sent++
				conn.SetReadDeadline(sent.Add(o.Timeout))
				for {
					n, err := conn.Read(buf)
					if err != nil {
						if errors.Is(err, os.ErrDeadlineExceeded) {
							tl.timeouts++
							break
						}
						tl.err = err // e.g. ICMP port unreachable: nobody serves there
						return
					}
					var h dnsmessage.Header
					var p dnsmessage.Parser
					if h, err = p.Start(buf[:n]); err != nil || h.ID != qid || !h.Response {
						continue // a late answer to an earlier query
					}
					tl.answered++
					tl.rcodes[strings.TrimPrefix(h.RCode.String(), "RCode")]++
					tl.lat = append(tl.lat, time.Since(sent))
					break
				}
			}
		}(&tallies[w], uint16(w))
	}
	wg.Wait()
	r := Result{Server: o.Server, Name: name.String(), Rcodes: map[string]int{}, Seconds: time.Since(start).Seconds()}
	var lat []time.Duration
	var firstErr error
	for _, tl := range tallies {
		r.Sent += tl.sent
		r.Answered += tl.answered
		r.Timeouts += tl.timeouts
		for k, v := range tl.rcodes {
			r.Rcodes[k] += v
		}
		lat = append(lat, tl.lat...)
		if firstErr == nil && tl.err != nil {
			firstErr = tl.err
		}
	}
	if r.Answered == 0 {
		if firstErr == nil {
			firstErr = fmt.Errorf("no answer to %d queries within %s each", r.Sent, o.Timeout)
		}
		return r, fmt.Errorf("%s: %w", o.Server, firstErr)
	}
	r.QPS = float64(r.Answered) / r.Seconds
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r.P50ms = float64(lat[len(lat)/2].Microseconds()) / 1000
	r.P99ms = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	return r, nil
}
