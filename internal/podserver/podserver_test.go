package podserver

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// start serves s on ip (a loopback address) and returns its base URL.
func start(t *testing.T, ip string, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, s) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	})
	return "http://" + l.Addr().String()
}

// clientFrom is an HTTP client whose connections leave from ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, url string, v any) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v in %q", url, err, b)
		}
	}
	return resp.StatusCode
}

func TestWhoamiReportsLocalAndCallerIP(t *testing.T) {
	a := start(t, "127.0.0.2", &Server{Hostname: "pod-a"})
	var w Whoami
	if code := get(t, clientFrom("127.0.0.3"), a+"/whoami", &w); code != 200 {
		t.Fatalf("status %d", code)
	}
	if w != (Whoami{Pod: "pod-a", IP: "127.0.0.2", Caller: "127.0.0.3"}) {
		t.Errorf("whoami = %+v, want pod-a on 127.0.0.2 called from 127.0.0.3", w)
	}
}

func TestFetch(t *testing.T) {
	// b answers; a fetches from its own address, as a pod would.
	b := start(t, "127.0.0.4", &Server{Hostname: "pod-b"})
	a := start(t, "127.0.0.2", &Server{Hostname: "pod-a", Client: clientFrom("127.0.0.2"), Timeout: 300 * time.Millisecond})
	c := clientFrom("127.0.0.3")

	// A hanging peer: accepts and never answers.
	hang, err := net.Listen("tcp", "127.0.0.5:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	// A closed port.
	closed, _ := net.Listen("tcp", "127.0.0.6:0")
	closedURL := "http://" + closed.Addr().String() + "/whoami"
	closed.Close()

	t.Run("json body", func(t *testing.T) {
		var f struct {
			Fetch
			Body Whoami `json:"body"`
		}
		if code := get(t, c, a+"/fetch?url="+url.QueryEscape(b+"/whoami"), &f); code != 200 {
			t.Fatalf("status %d: %+v", code, f)
		}
		if f.From.Pod != "pod-a" || f.URL != b+"/whoami" || f.Status != 200 || f.Error != "" {
			t.Errorf("fetch = %+v", f)
		}
		if f.Body != (Whoami{Pod: "pod-b", IP: "127.0.0.4", Caller: "127.0.0.2"}) {
			t.Errorf("fetched whoami = %+v, want pod-b on 127.0.0.4 called from pod-a's 127.0.0.2", f.Body)
		}
	})
	t.Run("text body", func(t *testing.T) {
		var f Fetch
		if code := get(t, c, a+"/fetch?url="+url.QueryEscape(b+"/healthz"), &f); code != 200 || string(f.Body) != `"ok"` {
			t.Errorf("status %d, body %s; want 200 and the string \"ok\"", code, f.Body)
		}
	})
	for _, tc := range []struct {
		name, url string
		code      int
		status    int
		err       string
	}{
		{"refused", closedURL, 502, 0, "connection refused"},
		{"timeout", "http://" + hang.Addr().String() + "/", 502, 0, "context deadline exceeded"},
		{"not 2xx", b + "/nothing", 502, 404, "answered 404 Not Found"},
		{"no url", "", 400, 0, "query parameter url must be an absolute http URL"},
		{"not http", "file:///etc/passwd", 400, 0, "query parameter url must be an absolute http URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Fetch
			start := time.Now()
			code := get(t, c, a+"/fetch?url="+url.QueryEscape(tc.url), &f)
			if code != tc.code || f.Status != tc.status || !strings.Contains(f.Error, tc.err) || f.From.Pod != "pod-a" {
				t.Errorf("fetch %q: HTTP %d %+v; want HTTP %d, status %d, error containing %q", tc.url, code, f, tc.code, tc.status, tc.err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("fetch took %v, the timeout is 300ms", d)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	a := start(t, "127.0.0.2", &Server{Hostname: "pod-a"})
	resp, err := http.Get(a + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Errorf("healthz: %d %q", resp.StatusCode, b)
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, &Server{Hostname: "x"}) }()
	if _, err := http.Get("http://" + l.Addr().String() + "/healthz"); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("the listener still accepts after shutdown")
	}
}

// Each /fetch opens its own connection (a Service's endpoint is chosen per
// connection), so two fetches of one URL reach the server on two.
func TestFetchOpensAConnectionEach(t *testing.T) {
	var conns int
	var mu sync.Mutex
	target := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go target.Serve(l)
	defer target.Close()
	a := start(t, "127.0.0.2", &Server{Hostname: "pod-a"})
	for i := 0; i < 2; i++ {
		get(t, clientFrom("127.0.0.3"), a+"/fetch?url="+url.QueryEscape("http://"+l.Addr().String()+"/"), nil)
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 2 {
		t.Errorf("two fetches reached the target on %d connections, want 2", conns)
	}
}
