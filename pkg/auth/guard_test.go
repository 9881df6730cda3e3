package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"
)

// testCA signs client certificates and is written to a file.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

func (ca *testCA) client(t *testing.T, cn string, orgs ...string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// apiServer is a stand-in kube-apiserver answering TokenReviews (token
// "good" is a service account) and SubjectAccessReviews (system:masters and
// that service account may use nodes/proxy), recording the reviews it gets.
// The webhook authorizer posts through the clientset's REST client, which a
// fake clientset lacks, hence HTTP.
type apiServer struct {
	srv    *httptest.Server
	client kubernetes.Interface
	mu     sync.Mutex
	sars   []authorizationv1.SubjectAccessReviewSpec
	trs    int
}

func newAPIServer(t *testing.T) *apiServer {
	t.Helper()
	a := &apiServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/tokenreviews", func(w http.ResponseWriter, r *http.Request) {
		var tr authenticationv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&tr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.trs++
		a.mu.Unlock()
		if tr.Spec.Token == "good" {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true,
				User: authenticationv1.UserInfo{Username: "system:serviceaccount:ns:alice", UID: "sa-uid", Groups: []string{"system:serviceaccounts"}}}
		}
		writeJSON(w, &tr)
	})
	mux.HandleFunc("POST /apis/authorization.k8s.io/v1/subjectaccessreviews", func(w http.ResponseWriter, r *http.Request) {
		var sar authorizationv1.SubjectAccessReview
		if err := json.NewDecoder(r.Body).Decode(&sar); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.sars = append(a.sars, sar.Spec)
		a.mu.Unlock()
		ra := sar.Spec.ResourceAttributes
		masters := slices.Contains(sar.Spec.Groups, "system:masters")
		if ra != nil && ra.Subresource == "proxy" && (masters || sar.Spec.User == "system:serviceaccount:ns:alice") {
			sar.Status.Allowed = true
		}
		writeJSON(w, &sar)
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	var err error
	if a.client, err = kubernetes.NewForConfig(&rest.Config{Host: a.srv.URL}); err != nil {
		t.Fatal(err)
	}
	return a
}

func writeJSON(w http.ResponseWriter, obj any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(obj)
}

func (a *apiServer) reviews() (tokenReviews int, sars []authorizationv1.SubjectAccessReviewSpec) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.trs, append([]authorizationv1.SubjectAccessReviewSpec(nil), a.sars...)
}

func TestGuardDelegates(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	api := newAPIServer(t)
	g, err := New("node-1", Options{
		ClientCAFile: ca.file, TokenWebhook: true, TokenWebhookCacheTTL: time.Minute,
		Mode: ModeWebhook, AuthorizedTTL: time.Minute, UnauthorizedTTL: time.Second,
	}, api.client)
	if err != nil {
		t.Fatal(err)
	}
	var sawAuthorization string
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuthorization = r.Header.Get("Authorization")
		w.WriteHeader(http.StatusOK)
	}))

	for _, tc := range []struct {
		name     string
		cert     *x509.Certificate
		token    string
		wantCode int
	}{
		{"nothing", nil, "", http.StatusUnauthorized},
		{"admin certificate", ca.client(t, "admin", "system:masters"), "", http.StatusOK},
		{"certificate of another CA", other.client(t, "admin", "system:masters"), "", http.StatusUnauthorized},
		{"certificate without rights", ca.client(t, "mallory"), "", http.StatusForbidden},
		{"accepted token", nil, "good", http.StatusOK},
		{"rejected token", nil, "bad", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			r := httptest.NewRequest("POST", "/exec/ns/web/app?command=sh", nil).WithContext(ctx)
			if tc.cert != nil {
				r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.cert}}
			}
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.wantCode {
				t.Errorf("code = %d (%s), want %d", rec.Code, rec.Body.String(), tc.wantCode)
			}
		})
	}
	// The token must not travel on to the runtime's streaming server.
	if sawAuthorization != "" {
		t.Errorf("handler saw Authorization %q", sawAuthorization)
	}

	trs, sars := api.reviews()
	if trs != 2 {
		t.Errorf("%d TokenReviews, want 2 (one per token)", trs)
	}
	if len(sars) != 3 {
		t.Fatalf("%d SubjectAccessReviews, want 3: %+v", len(sars), sars)
	}
	want := authorizationv1.ResourceAttributes{Verb: "create", Version: "v1", Resource: "nodes", Subresource: "proxy", Name: "node-1"}
	for _, s := range sars {
		if s.ResourceAttributes == nil || *s.ResourceAttributes != want {
			t.Errorf("SubjectAccessReview asks for %+v, want %+v", s.ResourceAttributes, want)
		}
	}
	if sars[0].User != "admin" || strings.Join(sars[0].Groups, ",") != "system:masters,system:authenticated" {
		t.Errorf("certificate user = %q %v", sars[0].User, sars[0].Groups)
	}
	if sars[2].User != "system:serviceaccount:ns:alice" || sars[2].UID != "sa-uid" {
		t.Errorf("token user = %q %q", sars[2].User, sars[2].UID)
	}

	// Answers are cached: the same token again asks nothing more.
	_, ctx := ktesting.NewTestContext(t)
	r := httptest.NewRequest("POST", "/exec/ns/web/app", nil).WithContext(ctx)
	r.Header.Set("Authorization", "Bearer good")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if trs2, sars2 := api.reviews(); trs2 != trs || len(sars2) != len(sars) {
		t.Errorf("reviews after a cached request: %d, %d; want %d, %d", trs2, len(sars2), trs, len(sars))
	}
}

func TestGuardAnonymous(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       Options
		wantCode   int
		wantInBody string
	}{
		{"anonymous off", Options{TokenWebhook: true, Mode: ModeWebhook}, http.StatusUnauthorized, "Unauthorized"},
		{"anonymous on, webhook", Options{Anonymous: true, TokenWebhook: true, Mode: ModeWebhook}, http.StatusForbidden, "user=system:anonymous"},
		{"anonymous on, always allow", Options{Anonymous: true, Mode: ModeAlwaysAllow}, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New("node-1", tc.opts, newAPIServer(t).client)
			if err != nil {
				t.Fatal(err)
			}
			_, ctx := ktesting.NewTestContext(t)
			rec := httptest.NewRecorder()
			g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})).
				ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil).WithContext(ctx))
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantInBody) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantInBody)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		noAPI   bool
		wantErr string
	}{
		{"no authentication", Options{Mode: ModeAlwaysAllow}, false, "no authentication method configured"},
		{"unknown mode", Options{TokenWebhook: true, Mode: "RBAC"}, false, `unknown authorization mode "RBAC"`},
		{"no mode", Options{TokenWebhook: true}, false, "unknown authorization mode"},
		{"missing CA file", Options{ClientCAFile: "/nonexistent/ca.crt", Mode: ModeAlwaysAllow}, false, "load client CA"},
		{"token webhook without client", Options{TokenWebhook: true, Mode: ModeAlwaysAllow}, true, "needs an API client"},
		{"webhook mode without client", Options{Anonymous: true, Mode: ModeWebhook}, true, "needs an API client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.noAPI {
				_, err = New("node-1", tc.opts, nil)
			} else {
				_, err = New("node-1", tc.opts, newAPIServer(t).client)
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
