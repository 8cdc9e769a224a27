package dnsload

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// server answers every A query for known with 10.0.0.1, anything else
// with NXDOMAIN, on a loopback UDP socket.
func server(t *testing.T, known string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
				continue
			}
			q := m.Questions[0]
			h := dnsmessage.Header{ID: m.Header.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeNameError}
			var answers []dnsmessage.Resource
			if q.Name.String() == known {
				h.RCode = dnsmessage.RCodeSuccess
				answers = append(answers, dnsmessage.Resource{
					Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 30},
					Body:   &dnsmessage.AResource{A: [4]byte{10, 0, 0, 1}},
				})
			}
			out, _ := (&dnsmessage.Message{Header: h, Questions: m.Questions, Answers: answers}).Pack()
			pc.WriteTo(out, addr)
		}
	}()
	return pc.LocalAddr().String()
}

func opts(srv, name string) Options {
	return Options{Server: srv, Name: name, Type: "A", Duration: 300 * time.Millisecond, Concurrency: 4, Timeout: 200 * time.Millisecond}
}

func TestRunCountsAnswersByRcode(t *testing.T) {
	srv := server(t, "kubernetes.default.svc.cluster.local.")
	r, err := Run(context.Background(), opts(srv, "kubernetes.default.svc.cluster.local"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Answered == 0 || r.Rcodes["Success"] != r.Answered || r.QPS <= 0 || r.Answered > r.Sent {
		t.Errorf("%+v", r)
	}
	r, err = Run(context.Background(), opts(srv, "nothing.example"))
	if err != nil || r.Rcodes["NameError"] == 0 || r.Rcodes["Success"] != 0 {
		t.Errorf("NXDOMAIN answers: %+v %v", r, err)
	}
}

func TestRunFailsWhenNobodyAnswers(t *testing.T) {
	// A socket that reads and never answers.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, err = Run(context.Background(), opts(pc.LocalAddr().String(), "a.example"))
	if err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("err = %v, want no answer", err)
	}
}

func TestCheckNamesTheFlag(t *testing.T) {
	err := Options{Server: "10.32.0.10", Name: "", Type: "MX", Duration: 0, Concurrency: 0, Timeout: 0}.Check()
	for _, want := range []string{"--server \"10.32.0.10\": give host:port", "--name", "--type \"MX\"", "--duration", "--concurrency", "--timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
