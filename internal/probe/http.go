package probe

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// HTTPGet makes one GET request for rawURL from inside namespace ns and
// returns the status and body. The connection is dialled on the namespace's
// thread (net/http's transport would dial on another, outside it).
func HTTPGet(ns, rawURL string, timeout time.Duration) (int, []byte, error) {
	return HTTPSGet(ns, rawURL, nil, timeout)
}

// HTTPSGet is HTTPGet over TLS with conf (nil: plain HTTP). Without a
// ServerName in conf, the URL's host is verified.
func HTTPSGet(ns, rawURL string, conf *tls.Config, timeout time.Duration) (int, []byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, nil, err
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if conf != nil {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	var conn net.Conn
	if err := InNetns(ns, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", host, timeout)
		return err
	}); err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if conf != nil {
		conf = conf.Clone()
		if conf.ServerName == "" {
			conf.ServerName = u.Hostname()
		}
		tc := tls.Client(conn, conf)
		if err := tc.Handshake(); err != nil {
			return 0, nil, fmt.Errorf("GET %s: %w", rawURL, err)
		}
		conn = tc
	}
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}
