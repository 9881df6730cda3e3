package streaming

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2/ktesting"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/auth"
)

// bufferFile collects audit lines in memory, as an audit file.
type bufferFile struct{ lockedBuffer }

func (*bufferFile) Close() error { return nil }

// records returns the lines written so far, decoded.
func (b *bufferFile) records(t *testing.T) []Record {
	t.Helper()
	var out []Record
	for line := range strings.Lines(b.String()) {
		var rec Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

var refusalTime = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func newTestRefusals(limit RefusalLimit) (*Refusals, *bufferFile, *Metrics, *prometheus.Registry) {
	file := &bufferFile{}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	f := NewRefusals(newWriterAuditor(file), m, limit)
	f.now = func() time.Time { return refusalTime }
	return f, file, m, reg
}

func TestRefusedExecIsRecorded(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f, file, m, _ := newTestRefusals(RefusalLimit{})
	r := httptest.NewRequest("POST", "/exec/ns/web/app?command=sh&command=-c&command=id&input=1&tty=1", nil)
	r.Header.Set("User-Agent", "kubectl/v1.37.2")
	mallory := &user.DefaultInfo{Name: "mallory", UID: "u-1", Groups: []string{"system:authenticated"}}
	f.RecordRefusal(ctx, r, mallory, http.StatusForbidden, "Forbidden (user=mallory, verb=create, resource=nodes, subresource(s)=[proxy])")

	recs := file.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	got := recs[0]
	if got.Kind != KindExec || got.User != "mallory" || got.UID != "u-1" || got.Namespace != "ns" || got.Pod != "web" ||
		got.Container != "app" || strings.Join(got.Command, " ") != "sh -c id" || !got.Stdin || !got.TTY ||
		got.Status != http.StatusForbidden || !strings.HasPrefix(got.Error, "Forbidden (user=mallory") ||
		got.UserAgent != "kubectl/v1.37.2" || got.SourceAddress == "" || !got.StartTime.Equal(refusalTime) || got.RefusalsDropped != 0 {
		t.Errorf("record = %+v", got)
	}
	if n := testutil.ToFloat64(m.refusals.WithLabelValues(KindExec, "403")); n != 1 {
		t.Errorf("refused metric = %v, want 1", n)
	}
}

func TestRefusalRecord(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   string
		target   string
		u        user.Info
		status   int
		want     Record
		notDebug bool
	}{
		{name: "unauthenticated attach with UID", method: "GET", target: "/attach/ns/web/uid-1/debugger?output=1", status: 401,
			want: Record{Kind: KindAttach, User: "system:anonymous", Groups: []string{"system:unauthenticated"}, Namespace: "ns", Pod: "web", PodUID: "uid-1", Container: "debugger", Status: 401}},
		{name: "port-forward", method: "POST", target: "/portForward/ns/web?port=8080&port=nope&port=99999", u: &user.DefaultInfo{Name: "bob"}, status: 403,
			want: Record{Kind: KindPortForward, User: "bob", Namespace: "ns", Pod: "web", Ports: []int32{8080}, Status: 403}},
		{name: "port-forward with UID", method: "POST", target: "/portForward/ns/web/uid-2", status: 401,
			want: Record{Kind: KindPortForward, User: "system:anonymous", Groups: []string{"system:unauthenticated"}, Namespace: "ns", Pod: "web", PodUID: "uid-2", Status: 401}},
		{name: "escaped segments", method: "POST", target: "/exec/ns/we%2Fb/app?command=ls", status: 401,
			want: Record{Kind: KindExec, User: "system:anonymous", Groups: []string{"system:unauthenticated"}, Namespace: "ns", Pod: "we/b", Container: "app", Command: []string{"ls"}, Status: 401}},
		{name: "path that fits no route", method: "POST", target: "/exec/ns", status: 401,
			want: Record{Kind: KindExec, User: "system:anonymous", Groups: []string{"system:unauthenticated"}, Namespace: "ns", Status: 401}},
		{name: "unclean path", method: "POST", target: "/logs/../exec/ns/web/app?command=id", status: 401,
			want: Record{Kind: KindExec, User: "system:anonymous", Groups: []string{"system:unauthenticated"}, Namespace: "ns", Pod: "web", Container: "app", Command: []string{"id"}, Status: 401}},
		{name: "other route", method: "GET", target: "/pods", status: 403, notDebug: true},
		{name: "prefix without slash", method: "GET", target: "/execute/ns/web/app", status: 403, notDebug: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			got, ok := refusalRecord(r, tc.u, tc.status, "why", refusalTime)
			if ok == tc.notDebug {
				t.Fatalf("recorded = %v, want %v", ok, !tc.notDebug)
			}
			if !ok {
				return
			}
			got.SourceAddress, got.UserAgent, got.Error = "", "", ""
			got.StartTime, got.EndTime = time.Time{}, time.Time{}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tc.want)
			if !bytes.Equal(g, w) {
				t.Errorf("record:\n got %s\nwant %s", g, w)
			}
		})
	}
}

// Anyone who can reach the port controls the request line: a record stays
// small however large it is.
func TestRefusalRecordIsBounded(t *testing.T) {
	long := strings.Repeat("é", 1000)
	target := "/exec/ns/" + strings.Repeat("p", 5000) + "/app?" + strings.Repeat("command="+long+"&", 100)
	r := httptest.NewRequest("POST", target, nil)
	r.Header.Set("User-Agent", long)
	rec, ok := refusalRecord(r, nil, 401, "Unauthorized: "+long, refusalTime)
	if !ok {
		t.Fatal("not recorded")
	}
	line, _ := json.Marshal(rec)
	if len(line) > 16<<10 {
		t.Errorf("record is %d bytes, want at most 16 KiB", len(line))
	}
	if len(rec.Command) != maxListItems || !strings.HasSuffix(rec.Command[0], "...(truncated)") {
		t.Errorf("command has %d items, first %q", len(rec.Command), rec.Command[0][:20])
	}
	if !json.Valid(line) || strings.ContainsRune(string(line), '\uFFFD') {
		t.Error("a clipped field split a character")
	}
}

// A flood of refused requests writes at most the burst, then, once the
// bucket refills, one record that counts those dropped.
func TestRefusalFloodIsRateLimited(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	const burst = 50
	f, file, m, _ := newTestRefusals(RefusalLimit{Rate: rate.Every(time.Second), Burst: burst})
	const flood = 10000
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range flood / 4 {
				r := httptest.NewRequest("POST", "/exec/ns/web/app?command=id", nil)
				f.RecordRefusal(ctx, r, nil, http.StatusUnauthorized, "Unauthorized")
			}
		})
	}
	wg.Wait()
	if n := len(file.records(t)); n != burst {
		t.Fatalf("%d records after a flood of %d, want the burst, %d", n, flood, burst)
	}
	if n := testutil.ToFloat64(m.dropped); n != flood-burst {
		t.Errorf("dropped metric = %v, want %d", n, flood-burst)
	}
	if n := testutil.ToFloat64(m.refusals.WithLabelValues(KindExec, "401")); n != flood {
		t.Errorf("refused metric = %v, want %d", n, flood)
	}

	// A second later the bucket has one token: the next record says how
	// many were left out, and the count starts again.
	f.now = func() time.Time { return refusalTime.Add(time.Second) }
	for range 2 {
		f.RecordRefusal(ctx, httptest.NewRequest("GET", "/attach/ns/web/app", nil), nil, http.StatusUnauthorized, "Unauthorized")
	}
	f.now = func() time.Time { return refusalTime.Add(2 * time.Second) }
	f.RecordRefusal(ctx, httptest.NewRequest("GET", "/attach/ns/web/app", nil), nil, http.StatusUnauthorized, "Unauthorized")
	recs := file.records(t)
	if len(recs) != burst+2 {
		t.Fatalf("%d records, want %d", len(recs), burst+2)
	}
	if got := recs[burst].RefusalsDropped; got != flood-burst {
		t.Errorf("refusalsDropped = %d, want %d", got, flood-burst)
	}
	if got := recs[burst+1].RefusalsDropped; got != 1 {
		t.Errorf("refusalsDropped of the next record = %d, want 1", got)
	}
	for _, rec := range recs[:burst] {
		if rec.RefusalsDropped != 0 {
			t.Fatalf("a record of the burst counts %d dropped", rec.RefusalsDropped)
		}
	}
}

func TestRefusalsWithoutFileOrMetrics(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	f := NewRefusals(nil, nil, RefusalLimit{})
	f.RecordRefusal(ctx, httptest.NewRequest("POST", "/exec/ns/web/app", nil), nil, 401, "Unauthorized")
	a, err := NewAuditor("")
	if err != nil {
		t.Fatal(err)
	}
	NewRefusals(a, nil, RefusalLimit{}).RecordRefusal(ctx, httptest.NewRequest("POST", "/exec/ns/web/app", nil), nil, 401, "Unauthorized")
}

// The agent's wiring: the guard refuses an exec without credentials and
// the audit file gets one line with the status.
func TestGuardRefusedExecWritesOneAuditLine(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	path := filepath.Join(t.TempDir(), "debug-audit.log")
	a, err := NewAuditor(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := auth.New("node-1", auth.Options{
		ClientCAFile: writeTestCA(t), Mode: auth.ModeAlwaysAllow,
		Refusals: NewRefusals(a, nil, RefusalLimit{}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := g.Wrap(NewHandler(Config{Auditor: a}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/exec/ns/web/app?command=cat&command=/etc/shadow", nil).WithContext(ctx))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("code = %d, want 401", w.Code)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1:\n%s", len(lines), data)
	}
	var rec Record
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Status != http.StatusUnauthorized || rec.Kind != KindExec || rec.User != "system:anonymous" ||
		rec.Pod != "web" || rec.Container != "app" || strings.Join(rec.Command, " ") != "cat /etc/shadow" {
		t.Errorf("record = %s", lines[0])
	}
}

// writeTestCA writes a CA certificate for client certificate authentication.
func writeTestCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
