package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

// UserAgent is the User-Agent of HTTP and gRPC probes: the kubelet's, for
// the servers that tell probes apart by it.
const UserAgent = "kube-probe/1.37"

// maxBody bounds how much of a response body a probe reads, as the kubelet.
const maxBody = 10 * 1024

// httpURL is the URL an httpGet probe asks: host (the pod's IP unless the
// probe names one), the port by number or by the name of one of c's ports.
func httpURL(h *v1.HTTPGetAction, c *v1.Container, podIP string) (*url.URL, error) {
	port, err := resolvePort(h.Port.String(), h.Port.IntValue(), c)
	if err != nil {
		return nil, err
	}
	host := h.Host
	if host == "" {
		host = podIP
	}
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := h.Path
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path)
	if err != nil {
		return nil, fmt.Errorf("build probe URL: %w", err)
	}
	return u, nil
}

// httpHeaders are the probe's request headers: the kubelet's User-Agent and
// Accept unless the probe sets its own.
func httpHeaders(h *v1.HTTPGetAction) http.Header {
	hdr := http.Header{}
	for _, x := range h.HTTPHeaders {
		hdr.Add(x.Name, x.Value)
	}
	if _, ok := hdr["User-Agent"]; !ok {
		hdr.Set("User-Agent", UserAgent)
	}
	if _, ok := hdr["Accept"]; !ok {
		hdr.Set("Accept", "*/*")
	}
	return hdr
}

// httpProbe GETs u. 2xx and 3xx are successes; redirects are followed only
// to the same host, as the kubelet does (a redirect elsewhere ends the probe
// successfully on the 3xx). Connection errors and other codes are failures.
func httpProbe(ctx context.Context, u *url.URL, hdr http.Header, timeout time.Duration) (bool, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{
		Transport: &http.Transport{
			// Probes check the endpoint is up, not who it is.
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, "", fmt.Errorf("build probe request: %w", err)
	}
	req.Header = hdr.Clone()
	if host := hdr.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		// Refused, reset, timed out: the container is not healthy.
		return false, err.Error(), nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return false, "", fmt.Errorf("read probe response: %w", err)
	}
	if resp.StatusCode >= http.StatusOK && resp.StatusCode < http.StatusBadRequest {
		return true, string(body), nil
	}
	return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode), nil
}

// resolvePort returns the port a probe names: a number, or the name of one
// of the container's ports.
func resolvePort(name string, number int, c *v1.Container) (int, error) {
	if number > 0 && number < 65536 {
		return number, nil
	}
	for _, p := range c.Ports {
		if p.Name == name && name != "" {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("couldn't find port %q in container %s", name, c.Name)
}
