//go:build e2e

package e2enode

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// env is the environment hack/cluster.sh wrote (see _output/e2e/env).
type env struct {
	kubeconfig    string
	nodeName      string
	agentBinary   string
	agentArgs     []string
	healthzPort   string
	agentPort     string
	certDir       string
	logDir        string
	clusterScript string
	instance      string
}

var (
	testEnv env
	client  kubernetes.Interface
)

func TestMain(m *testing.M) {
	if missing := missingEnv(); len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "e2e_node: FAIL: the e2e environment is missing or incomplete; run make e2e (hack/e2e.sh), "+
			"or source _output/e2e/env of an environment hack/cluster.sh up --instance e2e --no-agent started:\n  %s\n",
			strings.Join(missing, "\n  "))
		os.Exit(1)
	}
	testEnv = env{
		kubeconfig:    os.Getenv("KUBECONFIG"),
		nodeName:      os.Getenv("NODE_NAME"),
		agentBinary:   os.Getenv("EA_AGENT_BINARY"),
		agentArgs:     strings.Fields(os.Getenv("EA_AGENT_ARGS")),
		healthzPort:   os.Getenv("EA_AGENT_HEALTHZ_PORT"),
		agentPort:     os.Getenv("EA_AGENT_PORT"),
		certDir:       os.Getenv("EA_CERT_DIR"),
		logDir:        os.Getenv("EA_LOG_DIR"),
		clusterScript: os.Getenv("EA_CLUSTER_SCRIPT"),
		instance:      os.Getenv("EA_INSTANCE"),
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", testEnv.kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e_node: FAIL: load kubeconfig:", err)
		os.Exit(1)
	}
	client = kubernetes.NewForConfigOrDie(cfg)
	os.Exit(m.Run())
}

// e2eEnvVars are the variables hack/cluster.sh writes to _output/e2e/env
// that the suite reads; each must be set and non-empty.
var e2eEnvVars = []string{
	"KUBECONFIG",
	"NODE_NAME",
	"CONTAINER_RUNTIME_ENDPOINT",
	"EA_INSTANCE",
	"EA_CLUSTER_SCRIPT",
	"EA_AGENT_BINARY",
	"EA_AGENT_ARGS",
	"EA_AGENT_HEALTHZ_PORT",
	"EA_AGENT_PORT",
	"EA_CERT_DIR",
	"EA_AGENT_ROOT_DIR",
	"EA_LOG_DIR",
	"EA_NODE_IP",
}

// missingEnv lists, one line each, what the suite needs and does not find:
// unset variables, then the binaries and files the set ones name.
func missingEnv() []string {
	var missing []string
	for _, name := range e2eEnvVars {
		if os.Getenv(name) == "" {
			missing = append(missing, "environment variable "+name+" is not set")
		}
	}
	// The tests delete the node and stop and start components of the
	// environment: never run them against another instance (make run's).
	if inst := os.Getenv("EA_INSTANCE"); inst != "" && inst != "e2e" {
		missing = append(missing, fmt.Sprintf("environment variable EA_INSTANCE is %q, not \"e2e\"", inst))
	}
	executable := func(what, path string) {
		if path == "" {
			return
		}
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, fmt.Sprintf("binary %s (%s) is missing or not executable", path, what))
		}
	}
	executable("EA_AGENT_BINARY", os.Getenv("EA_AGENT_BINARY"))
	executable("EA_CLUSTER_SCRIPT", os.Getenv("EA_CLUSTER_SCRIPT"))
	if _, err := exec.LookPath("kubectl"); err != nil {
		missing = append(missing, "binary kubectl is not in PATH (_output/bin; make control-plane)")
	}
	// file reports whether path is there, a directory if dir, else a file.
	file := func(what, path string, dir bool) bool {
		if path == "" {
			return false
		}
		if fi, err := os.Stat(path); err != nil || fi.IsDir() != dir {
			kind := "file"
			if dir {
				kind = "directory"
			}
			missing = append(missing, fmt.Sprintf("%s %s (%s) is missing", kind, path, what))
			return false
		}
		return true
	}
	file("KUBECONFIG", os.Getenv("KUBECONFIG"), false)
	if dir := os.Getenv("EA_CERT_DIR"); file("EA_CERT_DIR", dir, true) {
		for _, name := range []string{"ca.crt", "ca.key", "admin.crt", "admin.key"} {
			file("EA_CERT_DIR", filepath.Join(dir, name), false)
		}
	}
	file("EA_LOG_DIR", os.Getenv("EA_LOG_DIR"), true)
	if ep := os.Getenv("CONTAINER_RUNTIME_ENDPOINT"); ep != "" {
		if sock, ok := strings.CutPrefix(ep, "unix://"); !ok {
			missing = append(missing, fmt.Sprintf("environment variable CONTAINER_RUNTIME_ENDPOINT is %q, not unix://SOCKET", ep))
		} else if fi, err := os.Stat(sock); err != nil || fi.Mode().Type() != os.ModeSocket {
			missing = append(missing, fmt.Sprintf("socket %s (CONTAINER_RUNTIME_ENDPOINT) is missing: the environment's containerd does not run", sock))
		}
	}
	return missing
}

// agent is one run of the real agent binary.
type agent struct {
	t       *testing.T
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	mu      sync.Mutex
	exitErr error
}

// e2eAgentFlags make the agent report quickly so tests wait seconds, not
// minutes; they change timing only, not behaviour.
var e2eAgentFlags = []string{
	"--node-status-update-frequency=1s",
	"--node-lease-duration-seconds=8",
	"--v=2",
}

// startAgent starts the agent binary with the environment's flags; it is
// killed when the test ends unless stopped before.
func startAgent(t *testing.T, extra ...string) *agent {
	t.Helper()
	args := append(append(append([]string{}, testEnv.agentArgs...), e2eAgentFlags...), extra...)
	logPath := filepath.Join(testEnv.logDir, fmt.Sprintf("e2e-agent-%s-%d.log", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create agent log: %v", err)
	}
	cmd := exec.Command(testEnv.agentBinary, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start agent: %v", err)
	}
	a := &agent{t: t, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		f.Close()
		a.mu.Lock()
		a.exitErr = err
		a.mu.Unlock()
		close(a.done)
	}()
	t.Logf("started agent pid %d, log %s", cmd.Process.Pid, logPath)
	startedAt := time.Now()
	t.Cleanup(func() {
		a.kill()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("agent log (last 4 KiB):\n%s", tail(b, 4096))
			}
		}
	})
	a.waitUp(startedAt)
	return a
}

// waitUp waits until this agent serves healthz and has renewed the node
// Lease since startedAt: then it has registered, and the node's state is
// its own rather than an earlier agent's.
func (a *agent) waitUp(startedAt time.Time) {
	a.t.Helper()
	waitFor(a.t, "the agent to serve healthz and renew its lease", 60*time.Second, func(ctx context.Context) (bool, error) {
		select {
		case <-a.done:
			a.t.Fatalf("agent exited during start-up: %v", a.exitErr)
		default:
		}
		resp, err := http.Get("http://127.0.0.1:" + testEnv.healthzPort + "/healthz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		l, err := client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, testEnv.nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return l.Spec.RenewTime != nil && l.Spec.RenewTime.After(startedAt), nil
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// stop sends SIGTERM and returns the exit error (nil for exit code 0).
func (a *agent) stop(timeout time.Duration) error {
	a.t.Helper()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(timeout):
		a.kill()
		a.t.Fatalf("agent did not exit within %s of SIGTERM", timeout)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.exitErr
}

func (a *agent) kill() {
	select {
	case <-a.done:
		return
	default:
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	<-a.done
}

// clusterScript runs hack/cluster.sh for the e2e instance (start or stop of
// one component).
func clusterScript(t *testing.T, args ...string) {
	t.Helper()
	args = append(args, "--instance", testEnv.instance)
	out, err := exec.Command(testEnv.clusterScript, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", testEnv.clusterScript, args, err, out)
	}
}

// waitFor polls cond every 200ms until it is true or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func(context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var lastErr error
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			lastErr = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
	}
}

func readyCondition(n *v1.Node) *v1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == v1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// waitNodeReady waits until the node's Ready condition has status want, and
// returns the node as then seen.
func waitNodeReady(t *testing.T, want v1.ConditionStatus, timeout time.Duration) *v1.Node {
	t.Helper()
	var node *v1.Node
	waitFor(t, fmt.Sprintf("node %s Ready=%s", testEnv.nodeName, want), timeout, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, testEnv.nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		node = n
		c := readyCondition(n)
		return c != nil && c.Status == want, nil
	})
	return node
}

// httpsClient returns a client trusting the environment's CA, presenting the
// named client certificate ("" for none).
func httpsClient(t *testing.T, certName string) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(testEnv.certDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certName != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(testEnv.certDir, certName+".crt"), filepath.Join(testEnv.certDir, certName+".key"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}
