package volume

import (
	"context"
	"errors"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

func issuedToken(issued time.Time, ttl time.Duration) *authenticationv1.TokenRequest {
	return &authenticationv1.TokenRequest{
		Spec:   authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(ttl / time.Second))},
		Status: authenticationv1.TokenRequestStatus{ExpirationTimestamp: metav1.NewTime(issued.Add(ttl))},
	}
}

func TestTokenNeedsRefresh(t *testing.T) {
	t0 := testNow
	for _, tc := range []struct {
		name   string
		tr     *authenticationv1.TokenRequest
		now    time.Time
		jitter time.Duration
		want   bool
	}{
		{"fresh", issuedToken(t0, time.Hour), t0.Add(time.Minute), 0, false},
		{"79% of ttl", issuedToken(t0, time.Hour), t0.Add(47 * time.Minute), 0, false},
		{"at 80% exactly", issuedToken(t0, time.Hour), t0.Add(48 * time.Minute), 0, false},
		{"past 80%", issuedToken(t0, time.Hour), t0.Add(48*time.Minute + time.Second), 0, true},
		{"jitter renews earlier", issuedToken(t0, time.Hour), t0.Add(47*time.Minute + 55*time.Second), 10 * time.Second, true},
		{"expired", issuedToken(t0, time.Hour), t0.Add(2 * time.Hour), 0, true},
		{"48h token at 23h", issuedToken(t0, 48*time.Hour), t0.Add(23 * time.Hour), 0, false},
		{"48h token past 24h", issuedToken(t0, 48*time.Hour), t0.Add(24*time.Hour + time.Second), 0, true},
		{"no expirationSeconds", &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{ExpirationTimestamp: metav1.NewTime(t0)}}, t0.Add(time.Hour), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tokenNeedsRefresh(tc.now, tc.tr, tc.jitter); got != tc.want {
				t.Errorf("tokenNeedsRefresh = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTokenCacheRenewal(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(testNow)
	api := newFakeAPI(clk)
	c := newTokenCache(clk)
	c.jitter = func() time.Duration { return 0 }
	req := func() *authenticationv1.TokenRequest {
		return &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{"vault"}, ExpirationSeconds: ptr[int64](3600),
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "app", UID: "uid-1"},
		}}
	}
	get := func() string {
		t.Helper()
		tr, err := c.get(ctx, api.CreateToken, "ns", "default", req())
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		return tr.Status.Token
	}

	first := get()
	clk.Step(40 * time.Minute) // 67%
	if got := get(); got != first || api.tokenRequests() != 1 {
		t.Fatalf("token renewed at 67%% of its ttl: %s, %d requests", got, api.tokenRequests())
	}
	clk.Step(9 * time.Minute) // 82%
	second := get()
	if second == first || api.tokenRequests() != 2 {
		t.Fatalf("token not renewed past 80%% of its ttl: %s, %d requests", second, api.tokenRequests())
	}

	// A failed renewal keeps a token that is still valid...
	api.tokenErr = errors.New("apiserver down")
	clk.Step(50 * time.Minute)
	if got := get(); got != second {
		t.Errorf("after failed renewal got %s, want the current %s", got, second)
	}
	// ...and fails once it has expired.
	clk.Step(time.Hour)
	if _, err := c.get(ctx, api.CreateToken, "ns", "default", req()); !errContains(err, "expired and refresh failed: apiserver down") {
		t.Errorf("expired token: err = %v", err)
	}

	// Nothing cached: the kubelet's wording.
	c.forgetPod("uid-1")
	if _, err := c.get(ctx, api.CreateToken, "ns", "default", req()); !errContains(err, "failed to fetch token: apiserver down") {
		t.Errorf("first fetch: err = %v", err)
	}
}

func TestTokenCacheForgetsPodsAndExpired(t *testing.T) {
	clk := clocktesting.NewFakeClock(testNow)
	c := newTokenCache(clk)
	mk := func(uid types.UID, ttl time.Duration) *authenticationv1.TokenRequest {
		tr := issuedToken(testNow, ttl)
		tr.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", UID: uid}
		return tr
	}
	c.tokens["a"] = mk("uid-a", time.Hour)
	c.tokens["b"] = mk("uid-b", time.Minute)
	c.forgetPod("uid-a")
	if _, ok := c.tokens["a"]; ok {
		t.Error("token of forgotten pod kept")
	}
	clk.Step(2 * time.Minute)
	c.dropExpired()
	if len(c.tokens) != 0 {
		t.Errorf("expired token kept: %v", c.tokens)
	}
}
