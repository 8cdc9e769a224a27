package nodes

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Client talks to the API server's node resources with net/http, as the
// kubeconfig says: its server, its CA, its client certificate or token.
type Client struct {
	cfg  *APIConfig
	http *http.Client
}

// NewClient makes a client whose every request ends within timeout.
func NewClient(cfg *APIConfig, timeout time.Duration) *Client {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment, // as kubectl does
		TLSClientConfig:     cfg.TLS,
		TLSHandshakeTimeout: timeout,
		ForceAttemptHTTP2:   true,
	}
	return &Client{cfg: cfg, http: &http.Client{Transport: tr, Timeout: timeout}}
}

// ListNodes returns the API's NodeList as JSON.
func (c *Client) ListNodes(ctx context.Context) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "/api/v1/nodes", "", nil)
}

// Get returns the answer to a GET of path (/version, /readyz, an object).
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	return c.do(ctx, http.MethodGet, path, "", nil)
}

// PatchNode applies a JSON merge patch to the named node.
func (c *Client) PatchNode(ctx context.Context, name string, patch []byte) error {
	_, err := c.do(ctx, http.MethodPatch, "/api/v1/nodes/"+url.PathEscape(name), "application/merge-patch+json", patch)
	return err
}

// APIError is a request the API server answered with an error status.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Message)
}

func (c *Client) do(ctx context.Context, method, path, contentType string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.Server+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kubesalt")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		var bad *tls.CertificateVerificationError
		switch {
		case errors.As(err, &ue) && ue.Timeout():
			return nil, fmt.Errorf("%s %s%s: no answer within %s; is the API server up?", method, c.cfg.Server, path, c.http.Timeout)
		case errors.As(err, &bad):
			return nil, fmt.Errorf("%s %s%s: %v; the kubeconfig's certificate-authority(-data) must be the CA that signed the API server's certificate", method, c.cfg.Server, path, bad.Err)
		case ue != nil:
			err = ue.Err // ue repeats the method and URL
		}
		return nil, fmt.Errorf("%s %s%s: %v; is the API server up at the kubeconfig's server?", method, c.cfg.Server, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s%s: reading the answer: %v", method, c.cfg.Server, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Code: resp.StatusCode, Message: string(bytes.TrimSpace(data))}
		// The API answers errors as a Status object; its message says why.
		var status struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &status) == nil && status.Message != "" {
			e.Message = status.Message
		}
		if e.Code == http.StatusUnauthorized || e.Code == http.StatusForbidden {
			e.Message += " (check the kubeconfig's user: it needs get/list/patch on nodes, e.g. the admin kubeconfig)"
		}
		return nil, fmt.Errorf("%s %s%s: %w", method, c.cfg.Server, path, e)
	}
	return data, nil
}

// SetPodCIDRs applies r.Set: one patch per node. A refused patch goes to
// r.Failed and the rest still run; in test mode nothing is sent.
func (c *Client) SetPodCIDRs(ctx context.Context, r *CIDRReport, test bool) {
	if test {
		return
	}
	done := []Assignment{}
	for _, a := range r.Set {
		if err := c.PatchNode(ctx, a.Node, patchFor(a)); err != nil {
			r.Failed = append(r.Failed, Failure{Node: a.Node, Error: err.Error()})
			continue
		}
		done = append(done, a)
	}
	r.Set = done
}
