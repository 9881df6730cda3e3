package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/connrotation"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2"
)

// apiRequestTimeout bounds one request/response call to the API server. The
// kube-apiserver ends such requests itself after its --request-timeout (1m by
// default), so a client waiting longer only waits on a dead connection.
const apiRequestTimeout = time.Minute

// eventQPS and eventBurst are the kubelet's --event-qps and --event-burst
// defaults.
const (
	eventQPS   = 50
	eventBurst = 100
)

// apiClients are the agent's clients of the API server. They are split as
// the kubelet's: a slow or throttled caller must not delay the heartbeat, and
// a client-side timeout must not cut watches.
type apiClients struct {
	// api serves request/response calls (pod status, volume contents,
	// tokens, reviews): each is bounded by apiRequestTimeout and waits on
	// the --kube-api-qps/--kube-api-burst budget it shares with watch.
	api kubernetes.Interface
	// watch serves informers. It has no client-side timeout: that would
	// end every watch after it (rest.Config.Timeout is the http.Client's,
	// which covers reading the body), and the reflector would reopen them
	// over and over; the server ends watches itself after minutes, and
	// HTTP/2 pings detect a dead connection.
	watch kubernetes.Interface
	// heartbeat renews the node Lease and sends the node status, as the
	// kubelet's heartbeatClient: no rate limiter, a timeout below the
	// lease duration, and connections of its own, closed when a request
	// times out so that the next renewal dials anew instead of queueing on
	// the connection a load-balancer failover left hanging.
	heartbeat kubernetes.Interface
	// events sends Events with a budget of their own: every failed probe
	// is an Event, and they must not hold back status updates.
	events kubernetes.Interface
}

// clientOptions are the limits of the agent's API clients.
type clientOptions struct {
	// QPS and Burst are the shared budget of the api and watch clients;
	// 0 means client-go's defaults, as the kubelet's flags.
	QPS   float32
	Burst int
	// RequestTimeout bounds one call of the api and events clients.
	RequestTimeout time.Duration
	// HeartbeatTimeout bounds one call of the heartbeat client.
	HeartbeatTimeout time.Duration
}

// heartbeatTimeout is the kubelet's heartbeat client timeout: the node
// status update frequency, but never more than the lease duration, so that
// a hung renewal is given up while the lease still holds.
func heartbeatTimeout(statusUpdateFrequency, leaseDuration time.Duration) time.Duration {
	return min(statusUpdateFrequency, leaseDuration)
}

// newAPIClients builds the agent's clients from base, which it does not
// change.
func newAPIClients(ctx context.Context, base *rest.Config, o clientOptions) (apiClients, error) {
	var c apiClients
	qps, burst := o.QPS, o.Burst
	if qps == 0 {
		qps = rest.DefaultQPS
	}
	if burst == 0 {
		burst = rest.DefaultBurst
	}
	limiter := flowcontrol.NewTokenBucketRateLimiter(qps, burst)

	apiCfg := rest.CopyConfig(base)
	apiCfg.RateLimiter = limiter
	apiCfg.Timeout = o.RequestTimeout
	watchCfg := rest.CopyConfig(base)
	watchCfg.RateLimiter = limiter
	watchCfg.Timeout = 0
	eventCfg := rest.CopyConfig(base)
	eventCfg.QPS, eventCfg.Burst = eventQPS, eventBurst
	eventCfg.Timeout = o.RequestTimeout

	hbCfg := rest.CopyConfig(base)
	hbCfg.QPS = -1 // no rate limiter
	hbCfg.RateLimiter = nil
	hbCfg.Timeout = o.HeartbeatTimeout
	// A dialer of its own gives the heartbeat its own transport (client-go
	// shares one per TLS configuration otherwise), so closing its
	// connections disturbs no watch.
	dialer := connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	hbCfg.Dial = dialer.DialContext
	logger := klog.FromContext(ctx)
	hbCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &closeOnTimeout{rt: rt, closeAll: dialer.CloseAll, logger: logger}
	})

	var err error
	for _, b := range []struct {
		name   string
		cfg    *rest.Config
		client *kubernetes.Interface
	}{
		{"API", apiCfg, &c.api}, {"watch", watchCfg, &c.watch}, {"heartbeat", hbCfg, &c.heartbeat}, {"event", eventCfg, &c.events},
	} {
		if *b.client, err = kubernetes.NewForConfig(b.cfg); err != nil {
			return apiClients{}, fmt.Errorf("create %s client: %w", b.name, err)
		}
	}
	return c, nil
}

// closeOnTimeout closes every connection of the heartbeat client when one of
// its requests fails past its deadline: over HTTP/2 the next request would
// otherwise go down the same dead connection until pings find it out, later
// than the lease expires.
type closeOnTimeout struct {
	rt       http.RoundTripper
	closeAll func()
	logger   klog.Logger
}

func (c *closeOnTimeout) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(req)
	if err != nil && timedOut(req, err) {
		c.logger.Info("Closing the heartbeat connections after a request timed out", "method", req.Method, "url", req.URL.Path, "err", err)
		c.closeAll()
	}
	return resp, err
}

// timedOut tells whether req failed with err for its deadline. The
// http.Client's timer may cancel the request ("request canceled") a moment
// before the context client-go set up with the same timeout reports it, so
// the deadline itself is checked too.
func timedOut(req *http.Request, err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	deadline, ok := req.Context().Deadline()
	return ok && !time.Now().Before(deadline)
}

// WrappedRoundTripper lets client-go's helpers reach the transport below.
func (c *closeOnTimeout) WrappedRoundTripper() http.RoundTripper { return c.rt }
