package volume

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

const (
	// tokenMaxTTL is the age at which a token is renewed whatever its
	// expiration, as the kubelet's token manager does.
	tokenMaxTTL = 24 * time.Hour
	// tokenMaxJitter spreads the renewals of many pods.
	tokenMaxJitter = 10 * time.Second
)

// tokenRequester asks the API server for a token (APISource.CreateToken).
type tokenRequester func(ctx context.Context, namespace, serviceAccount string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)

// tokenCache keeps the service account tokens issued for pods and renews
// them as the kubelet's token manager does. It is safe for concurrent use.
type tokenCache struct {
	clock  clock.Clock
	jitter func() time.Duration

	mu     sync.Mutex
	tokens map[string]*authenticationv1.TokenRequest
}

func newTokenCache(clk clock.Clock) *tokenCache {
	return &tokenCache{
		clock: clk,
		jitter: func() time.Duration {
			return time.Duration(rand.Float64() * float64(tokenMaxJitter)).Truncate(time.Second)
		},
		tokens: map[string]*authenticationv1.TokenRequest{},
	}
}

// get returns the cached token for the request or a new one when it is due
// for renewal. When renewal fails, a token that has not expired yet is still
// returned (and the failure logged), so a short API outage does not break a
// running pod.
func (c *tokenCache) get(ctx context.Context, request tokenRequester, namespace, serviceAccount string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	key := tokenKey(namespace, serviceAccount, tr)
	c.mu.Lock()
	cached, ok := c.tokens[key]
	c.mu.Unlock()
	now := c.clock.Now()
	if ok && !tokenNeedsRefresh(now, cached, c.jitter()) {
		return cached, nil
	}

	fresh, err := request(ctx, namespace, serviceAccount, tr)
	if err != nil {
		switch {
		case !ok:
			return nil, fmt.Errorf("failed to fetch token: %w", err)
		case now.After(cached.Status.ExpirationTimestamp.Time):
			return nil, fmt.Errorf("token %s expired and refresh failed: %w", key, err)
		default:
			klog.FromContext(ctx).Error(err, "Failed to renew service account token, using the current one", "cacheKey", key)
			return cached, nil
		}
	}
	c.mu.Lock()
	c.tokens[key] = fresh
	c.mu.Unlock()
	return fresh, nil
}

// forgetPod drops the tokens bound to a pod.
func (c *tokenCache) forgetPod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, tr := range c.tokens {
		if tr.Spec.BoundObjectRef != nil && tr.Spec.BoundObjectRef.UID == uid {
			delete(c.tokens, k)
		}
	}
}

// dropExpired forgets tokens past their expiration; the kubelet does this
// every minute, here it happens on each SetUp.
func (c *tokenCache) dropExpired() {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, tr := range c.tokens {
		if now.After(tr.Status.ExpirationTimestamp.Time) {
			delete(c.tokens, k)
		}
	}
}

// tokenNeedsRefresh reports whether a token is due for renewal at now: once
// 80% of its lifetime has passed, or once it is older than 24 hours (for
// tokens the API server issued with a longer life than asked), each moved
// earlier by jitter. A token without expirationSeconds is never renewed,
// as with the kubelet.
func tokenNeedsRefresh(now time.Time, tr *authenticationv1.TokenRequest, jitter time.Duration) bool {
	if tr.Spec.ExpirationSeconds == nil {
		return false
	}
	ttl := time.Duration(*tr.Spec.ExpirationSeconds) * time.Second
	exp := tr.Status.ExpirationTimestamp.Time
	issued := exp.Add(-ttl)
	if now.After(issued.Add(tokenMaxTTL - jitter)) {
		return true
	}
	// Integer percent of whole seconds, as the kubelet computes it.
	remaining := time.Duration(*tr.Spec.ExpirationSeconds*20/100) * time.Second
	return now.After(exp.Add(-remaining - jitter))
}

// tokenKey identifies a token request; it holds nothing secret and may be
// logged.
func tokenKey(namespace, serviceAccount string, tr *authenticationv1.TokenRequest) string {
	var exp int64
	if tr.Spec.ExpirationSeconds != nil {
		exp = *tr.Spec.ExpirationSeconds
	}
	var ref authenticationv1.BoundObjectReference
	if tr.Spec.BoundObjectRef != nil {
		ref = *tr.Spec.BoundObjectRef
	}
	return fmt.Sprintf("%q/%q/%#v/%d/%s/%s/%s/%s", serviceAccount, namespace, tr.Spec.Audiences, exp, ref.Kind, ref.APIVersion, ref.Name, ref.UID)
}
