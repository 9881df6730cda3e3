//go:build e2e

package e2enode

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// terminal runs a command under a pseudo-terminal, as a person at a shell
// would, and lets the test type into it and read what it shows.
type terminal struct {
	t    *testing.T
	cmd  *exec.Cmd
	pty  *os.File
	mu   sync.Mutex
	seen strings.Builder
	done chan error
}

func startTerminal(t *testing.T, name string, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command(name, args...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatalf("start %s under a pty: %v", name, err)
	}
	term := &terminal{t: t, cmd: cmd, pty: f, done: make(chan error, 1)}
	go func() {
		r := bufio.NewReader(f)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			term.mu.Lock()
			term.seen.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { term.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		f.Close()
	})
	return term
}

func (term *terminal) output() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.seen.String()
}

// expect waits until the terminal has shown want.
func (term *terminal) expect(want string, timeout time.Duration) {
	term.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(term.output(), want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	term.t.Fatalf("terminal did not show %q within %s; it showed:\n%s", want, timeout, term.output())
}

func (term *terminal) send(s string) {
	term.t.Helper()
	if _, err := term.pty.WriteString(s); err != nil {
		term.t.Fatalf("type into the terminal: %v", err)
	}
}

// wait waits for the command to exit and returns its exit code.
func (term *terminal) wait(timeout time.Duration) int {
	term.t.Helper()
	select {
	case err := <-term.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			term.t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(timeout):
		term.t.Fatalf("command did not exit within %s; terminal showed:\n%s", timeout, term.output())
		return -1
	}
}

func auditLogPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "debug-audit.log")
}

// auditEntries reads the agent's debug audit log.
func auditEntries(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read audit log: %v", err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestInteractiveDebugSession(t *testing.T) {
	audit := auditLogPath(t)
	startAgent(t, "--debug-audit-log="+audit)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := runningApp(t, ns, "interactive")

	term := startTerminal(t, "kubectl", "-n", ns, "debug", "-it", pod.Name, "--image="+busyboxImage,
		"--image-pull-policy=Never", "--target=app", "--container=shell", "--", "sh")
	term.expect("#", 60*time.Second)
	term.send("ps -o pid,args; echo DONE-$((6*7))\r")
	term.expect("DONE-42", 30*time.Second)
	if !strings.Contains(term.output(), "/app") {
		t.Errorf("ps in the interactive debugger does not list the app:\n%s", term.output())
	}
	term.send("exit\r")
	if code := term.wait(30 * time.Second); code != 0 {
		t.Errorf("kubectl debug -it exited %d, want 0", code)
	}
	got := waitPod(t, ns, pod.Name, "shell terminated", 60*time.Second, ephemeralTerminated("shell"))
	if s := ephemeralStatus(got, "shell"); s.State.Terminated.ExitCode != 0 {
		t.Errorf("debug container after exit = %+v, want exit code 0", s.State.Terminated)
	}
	assertOneEphemeralCRIContainer(t, got, "shell")

	waitFor(t, "an audit line for the attach", 20*time.Second, func(context.Context) (bool, error) {
		for _, e := range auditEntries(t, audit) {
			if e["container"] == "shell" && e["pod"] == pod.Name && e["kind"] == "attach" {
				return true, nil
			}
		}
		return false, nil
	})
	// Two kinds of line name the debugger: its creation, then the session.
	created := 0
	for _, e := range auditEntries(t, audit) {
		if e["container"] != "shell" {
			continue
		}
		switch e["kind"] {
		case "container":
			created++
			if e["decision"] != "allowed" || e["target"] != "app" || e["fieldManager"] == "" || e["containerID"] == "" {
				t.Errorf("creation audit line = %v, want decision allowed, target app, a field manager and the container ID", e)
			}
		default:
			// Through kube-apiserver, the agent's caller is the API server's
			// kubelet-client identity.
			if e["user"] != "kube-apiserver-kubelet-client" || e["ephemeral"] != true || e["tty"] != true || e["kind"] != "attach" {
				t.Errorf("audit line = %v, want user kube-apiserver-kubelet-client, kind attach, ephemeral and tty true", e)
			}
		}
	}
	if created != 1 {
		t.Errorf("%d creation audit lines for the debugger, want 1", created)
	}
}

func TestAttachToRunningDebugContainer(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := runningApp(t, ns, "attach")
	ec := debugContainer("shell", "app", "sh")
	ec.Stdin, ec.TTY = true, true
	addEphemeral(t, pod, ec)
	waitPod(t, ns, pod.Name, "shell running", 60*time.Second, func(p *v1.Pod) bool {
		s := ephemeralStatus(p, "shell")
		return s != nil && s.State.Running != nil
	})

	term := startTerminal(t, "kubectl", "-n", ns, "attach", "-it", pod.Name, "-c", "shell")
	time.Sleep(time.Second)
	term.send("echo attached-$((40+2))\r")
	term.expect("attached-42", 30*time.Second)
	term.send("exit 0\r")
	term.wait(30 * time.Second)
	waitPod(t, ns, pod.Name, "shell terminated", 60*time.Second, ephemeralTerminated("shell"))
}

func TestExec(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	createPod(t, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shell", Namespace: ns},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers:                    []v1.Container{{Name: "box", Image: busyboxImage, ImagePullPolicy: v1.PullNever, Command: []string{"sleep", "3600"}}},
		},
	})
	pod := waitPod(t, ns, "shell", "Running", 90*time.Second, phaseIs(v1.PodRunning))

	if out := mustKubectl(t, "-n", ns, "exec", pod.Name, "--", "sh", "-c", "echo exec-ok"); !strings.Contains(out, "exec-ok") {
		t.Errorf("kubectl exec = %q", out)
	}
	out, err := kubectl(t, "-n", ns, "exec", pod.Name, "--", "sh", "-c", "exit 3")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("kubectl exec of exit 3: %v (%s), want exit code 3", err, out)
	}

	term := startTerminal(t, "kubectl", "-n", ns, "exec", "-it", pod.Name, "--", "sh")
	term.expect("#", 30*time.Second)
	term.send("echo tty-$((20+1)); exit 5\r")
	term.expect("tty-21", 30*time.Second)
	if code := term.wait(30 * time.Second); code != 5 {
		t.Errorf("kubectl exec -it exited %d, want 5", code)
	}

	// Exec into an ephemeral container works the same way.
	addEphemeral(t, pod, debugContainer("debugger", "box", "sleep", "3600"))
	waitPod(t, ns, pod.Name, "debugger running", 60*time.Second, func(p *v1.Pod) bool {
		s := ephemeralStatus(p, "debugger")
		return s != nil && s.State.Running != nil
	})
	if out := mustKubectl(t, "-n", ns, "exec", pod.Name, "-c", "debugger", "--", "sh", "-c", "echo in-debugger"); !strings.Contains(out, "in-debugger") {
		t.Errorf("kubectl exec into the ephemeral container = %q", out)
	}

	// kubectl logs -f of a debug container.
	addEphemeral(t, pod, debugContainer("talker", "box", "sh", "-c", "for i in 1 2 3; do echo line-$i; sleep 0.3; done"))
	waitPod(t, ns, pod.Name, "talker started", 60*time.Second, func(p *v1.Pod) bool {
		s := ephemeralStatus(p, "talker")
		return s != nil && (s.State.Running != nil || s.State.Terminated != nil)
	})
	if out := mustKubectl(t, "-n", ns, "logs", "-f", pod.Name, "-c", "talker"); !strings.Contains(out, "line-3") {
		t.Errorf("kubectl logs -f of the debug container = %q", out)
	}
}

func TestPortForward(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	pod := runningApp(t, ns, "web")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := kubectlCmd(ctx, "-n", ns, "port-forward", "--address=127.0.0.1", "pod/"+pod.Name, "18089:8080")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	var body string
	waitFor(t, "a request through kubectl port-forward", 30*time.Second, func(context.Context) (bool, error) {
		resp, err := http.Get("http://127.0.0.1:18089/")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK, nil
	})
	if !strings.Contains(body, "distroless-app") {
		t.Errorf("answer through port-forward = %q", body)
	}
}

// userCert signs a client certificate for a user with the environment's CA.
func userCert(t *testing.T, user string) tls.Certificate {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(testEnv.certDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(testEnv.certDir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	caBlock, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	keyBlock, _ := pem.Decode(keyPEM)
	caKey, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		if k, err2 := x509.ParseECPrivateKey(keyBlock.Bytes); err2 == nil {
			caKey = k
		} else {
			t.Fatalf("parse CA key: %v", err)
		}
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: user},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func agentGet(t *testing.T, path string, cert *tls.Certificate, token string) int {
	t.Helper()
	c := httpsClient(t, "")
	if cert != nil {
		c.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	req, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+testEnv.agentPort+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAgentAPIAuthorization(t *testing.T) {
	startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := createNamespace(t)
	ctx := context.Background()

	stranger := userCert(t, "e2e-stranger")
	admin := userCert(t, "e2e-node-admin")
	bindNodeProxy(t, "User", "e2e-node-admin", "")

	for _, sa := range []string{"prober", "nobody"} {
		if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bindNodeProxy(t, "ServiceAccount", "prober", ns)
	token := func(sa string) string {
		tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}

	path := "/pods"
	for _, tc := range []struct {
		name  string
		cert  *tls.Certificate
		token string
		want  int
	}{
		{"anonymous", nil, "", http.StatusUnauthorized},
		{"client cert without RBAC", &stranger, "", http.StatusForbidden},
		{"client cert with nodes/proxy", &admin, "", http.StatusOK},
		{"service account with nodes/proxy", nil, token("prober"), http.StatusOK},
		{"service account without", nil, token("nobody"), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Authorization answers are cached; poll briefly for RBAC to land.
			var got int
			deadline := time.Now().Add(15 * time.Second)
			for {
				got = agentGet(t, path, tc.cert, tc.token)
				if got == tc.want || time.Now().After(deadline) {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			if got != tc.want {
				t.Errorf("GET %s = %d, want %d", path, got, tc.want)
			}
		})
	}
}

// bindNodeProxy grants a subject the nodes/proxy subresource, the right the
// agent's API asks for exec, attach, logs and pods.
func bindNodeProxy(t *testing.T, kind, name, ns string) {
	t.Helper()
	ctx := context.Background()
	role := "e2e-node-proxy"
	if _, err := client.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{}); err != nil {
		if _, err := client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: role},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/proxy"}, Verbs: []string{"*"}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	subject := rbacv1.Subject{Kind: kind, Name: name, Namespace: ns}
	if kind == "User" {
		subject.APIGroup = rbacv1.GroupName
	}
	binding := fmt.Sprintf("e2e-%s-%s", strings.ToLower(kind), name)
	_ = client.RbacV1().ClusterRoleBindings().Delete(ctx, binding, metav1.DeleteOptions{})
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: binding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{subject},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding, metav1.DeleteOptions{})
	})
}

// Requests to the debug routes that the agent refuses (401, 403) leave an
// audit line each, with who, what and the status (issue 12).
func TestRefusedDebugRequestsAreAudited(t *testing.T) {
	audit := auditLogPath(t)
	startAgent(t, "--debug-audit-log="+audit)
	stranger := userCert(t, "e2e-stranger")
	path := "/exec/e2e-ns/web/app?command=cat&command=/etc/shadow"
	if code := agentGet(t, path, nil, ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous exec = %d, want 401", code)
	}
	if code := agentGet(t, path, &stranger, ""); code != http.StatusForbidden {
		t.Errorf("exec without RBAC = %d, want 403", code)
	}
	want := map[float64]string{http.StatusUnauthorized: "system:anonymous", http.StatusForbidden: "e2e-stranger"}
	entries := auditEntries(t, audit)
	if len(entries) != len(want) {
		t.Fatalf("audit lines = %v, want one per refused request", entries)
	}
	for _, e := range entries {
		status, _ := e["status"].(float64)
		if e["user"] != want[status] || e["kind"] != "exec" || e["namespace"] != "e2e-ns" || e["pod"] != "web" ||
			e["container"] != "app" || fmt.Sprint(e["command"]) != "[cat /etc/shadow]" {
			t.Errorf("audit line = %v", e)
		}
	}
}
