// Package podserver is the HTTP server of kubesalt's test image: a pod
// that tells who it is and who called it (the smoke test's proof that
// there is no NAT between pods), and that fetches a URL on the caller's
// behalf (pod A calling pod B or a ClusterIP service).
package podserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"time"
)

// FetchTimeout bounds one /fetch.
const FetchTimeout = 3 * time.Second

// maxBody is the most of a fetched body that is kept.
const maxBody = 1 << 20

// Server answers /whoami, /fetch and /healthz.
type Server struct {
	// Hostname is the pod name reported (the pod's hostname).
	Hostname string
	// Client makes the /fetch requests; nil means http.DefaultTransport's.
	Client *http.Client
	// Timeout bounds one /fetch; zero means FetchTimeout.
	Timeout time.Duration
	// Log gets one line per request; nil means no log.
	Log *log.Logger
}

// Whoami is the /whoami answer.
type Whoami struct {
	Pod    string `json:"pod"`
	IP     string `json:"ip"`     // the local address the request arrived on
	Caller string `json:"caller"` // the source IP the server saw
}

// Fetch is the /fetch answer.
type Fetch struct {
	From   From   `json:"from"`
	URL    string `json:"url"`
	Status int    `json:"status,omitempty"`
	// Body is the fetched body: JSON as it is, anything else as a string.
	Body  json.RawMessage `json:"body,omitempty"`
	Error string          `json:"error,omitempty"`
}

// From names the pod that made a fetch.
type From struct {
	Pod string `json:"pod"`
}

// Handler routes the server's endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /whoami", s.whoami)
	mux.HandleFunc("GET /fetch", s.fetch)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	})
	if s.Log == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Log.Printf("%s %s %s", r.RemoteAddr, r.Method, r.URL.RequestURI())
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	var local string
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		local = hostOf(a.String())
	}
	writeJSON(w, http.StatusOK, Whoami{Pod: s.Hostname, IP: local, Caller: hostOf(r.RemoteAddr)})
}

// hostOf is the IP of "ip:port" (or the string itself when it has no port).
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// fetch GETs ?url= and answers 200 with its status and body when it
// answered 2xx; 502 with the error when it failed or answered otherwise;
// 400 when url is missing or not http(s).
func (s *Server) fetch(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("url")
	res := Fetch{From: From{Pod: s.Hostname}, URL: raw}
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		res.Error = "query parameter url must be an absolute http URL, e.g. /fetch?url=http://10.200.1.5:8080/whoami"
		writeJSON(w, http.StatusBadRequest, res)
		return
	}
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = FetchTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		res.Error = err.Error()
		writeJSON(w, http.StatusBadRequest, res)
		return
	}
	// A new connection per fetch: kube-proxy picks a Service's endpoint per
	// connection, and a kept-alive one would lead every fetch to the first.
	req.Close = true
	resp, err := client.Do(req)
	if err != nil {
		res.Error = err.Error()
		writeJSON(w, http.StatusBadGateway, res)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	res.Status = resp.StatusCode
	res.Body = asJSON(body)
	switch {
	case err != nil:
		res.Error = fmt.Sprintf("reading the body of %s: %v", raw, err)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		res.Error = fmt.Sprintf("%s answered %s", raw, resp.Status)
	}
	if res.Error != "" {
		writeJSON(w, http.StatusBadGateway, res)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// asJSON keeps a JSON body as it is and quotes anything else.
func asJSON(b []byte) json.RawMessage {
	if len(b) > 0 && json.Valid(b) {
		return json.RawMessage(b)
	}
	q, _ := json.Marshal(string(b))
	return q
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// Serve serves s on l until ctx is done, then shuts down gracefully
// (waiting up to 5 s for requests in flight) and returns nil.
func Serve(ctx context.Context, l net.Listener, s *Server) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
