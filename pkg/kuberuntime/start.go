package kuberuntime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugpolicy"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// Waiting reasons for containers that failed to start, as the kubelet's.
const (
	ReasonCreateContainerConfigError = "CreateContainerConfigError"
	ReasonCreateContainerError       = "CreateContainerError"
	ReasonRunContainerError          = "RunContainerError"
	// ReasonPulling is the agent's own: the image is being pulled outside
	// the sync (see Images), which retries once the pull is done.
	ReasonPulling = "Pulling"
)

// The kubelet's postStart hook failure: the Waiting reason of the
// container it killed, and the reason of the Warning Event (and the
// message of the Killing Event).
const (
	ReasonPostStartHookError  = "PostStartHookError"
	ReasonFailedPostStartHook = "FailedPostStartHook"
	reasonFailedPreStopHook   = "FailedPreStopHook"
)

// postStartHookTimeout bounds a postStart hook. The kubelet sets none, but
// here a hook that never returns would hold the pod's worker, and with it
// the pod's debuggers and its deletion; one past it fails as a timeout.
const postStartHookTimeout = 5 * time.Minute

// ReasonContainerLost is the Event reason for an ephemeral container the
// runtime no longer has (removed behind the agent's back): it is reported
// terminated and never started again.
const ReasonContainerLost = "ContainerLost"

// errDenied says the debug policy denied an ephemeral container: it is not
// a failure to retry, its status is final.
var errDenied = errors.New("denied by the debug policy")

// ReasonedError is an error that carries a container Waiting reason, such
// as ErrImagePull from the image puller.
type ReasonedError interface {
	error
	Reason() string
}

// startContainer starts one planned container and returns, on failure, the
// Waiting reason and message its status must show.
func (p *podSync) startContainer(ctx context.Context, st StartAction) (podstate.Waiting, error) {
	pod := p.pod
	logger := klog.FromContext(ctx).WithValues("containerName", st.Name, "containerType", st.Type)
	spec := podstate.ContainerSpec(pod, st.Type, st.Name)
	if spec == nil {
		return podstate.Waiting{}, fmt.Errorf("container %s is not in the pod spec", st.Name)
	}
	ref := podstate.ContainerRef(pod, st.Type, st.Name)
	fail := func(reason string, err error, event bool) (podstate.Waiting, error) {
		if event {
			p.Recorder.Eventf(ref, v1.EventTypeWarning, "Failed", "Error: %v", err)
		}
		return podstate.Waiting{Reason: reason, Message: err.Error()}, err
	}
	if st.CreatedID != "" {
		// Created before, never started (the agent stopped in between):
		// start that one, never a second. Its first start was
		// interrupted, or never made.
		p.noteInterruptedStart(ctx, st, st.CreatedID)
		if err := p.Runtime.StartContainer(ctx, st.CreatedID); err != nil {
			return fail(ReasonRunContainerError, err, true)
		}
		p.Recorder.Eventf(ref, v1.EventTypeNormal, "Started", "Started container %s", st.Name)
		if w, err := p.postStart(ctx, st, spec, st.CreatedID); err != nil {
			return w, err
		}
		logger.Info("Started container created earlier", "containerID", st.CreatedID)
		return podstate.Waiting{}, nil
	}

	// The debug policy decides before anything is done for the container:
	// a denied image is not even pulled. A replacement is decided again,
	// so that it gets the caps and limits of the policy in force.
	decision := debugpolicy.Decision{Allowed: true}
	if st.Type == criconfig.ContainerTypeEphemeral {
		var denied bool
		var err error
		if decision, denied, err = p.decideDebug(ctx, st); err != nil {
			return fail(ReasonCreateContainerConfigError, err, true)
		}
		if denied {
			return podstate.Waiting{}, errDenied
		}
	}
	if w, err := p.targetUnsupported(st); err != nil {
		return w, err
	}

	pullSecrets := p.pullSecrets(ctx, pod)
	imageRef, err := p.Images.EnsureImage(ctx, ref, pod, spec.Image, spec.ImagePullPolicy, pullSecrets, p.sandboxConfig)
	if err != nil {
		reason := "ErrImagePull"
		var re ReasonedError
		if errors.As(err, &re) {
			reason = re.Reason()
		}
		// The puller emitted its own events.
		return fail(reason, err, false)
	}

	opts := criconfig.ContainerOptions{
		Type:         st.Type,
		RestartCount: st.RestartCount,
		ImageRef:     imageRef,
		PodIPs:       p.podIPs,
		HostIPs:      p.cfg.NodeIPs,
		NodeName:     p.cfg.NodeName,
		Sources:      p.Secrets,
		Node:         p.cfg.Node,
	}
	if p.Services != nil {
		if opts.ServiceEnv, err = p.Services.ServiceEnv(pod); err != nil {
			return fail(ReasonCreateContainerConfigError, err, true)
		}
	}
	if len(p.podIPs) > 0 {
		opts.PodIP = p.podIPs[0]
	}
	if len(p.cfg.NodeIPs) > 0 {
		opts.HostIP = p.cfg.NodeIPs[0]
	}
	// The environment comes first, as with the kubelet: a subPathExpr is
	// expanded with all of it, valueFrom variables included.
	if opts.Env, err = criconfig.ResolveEnv(ctx, pod, spec, opts); err != nil {
		return fail(ReasonCreateContainerConfigError, err, true)
	}
	if p.mounter != nil {
		if opts.Mounts, err = p.mounter.MountsWithEnv(spec, opts.Env.Map()); err != nil {
			return fail(ReasonCreateContainerConfigError, err, true)
		}
	}
	if opts.ImageUID, opts.ImageUsername, err = p.Images.ImageUser(ctx, imageRef); err != nil {
		return fail(ReasonCreateContainerConfigError, fmt.Errorf("inspect image %s: %w", spec.Image, err), true)
	}
	if st.Type == criconfig.ContainerTypeEphemeral {
		if opts.TargetContainerID, err = targetContainerID(pod, p.state, st.Index); err != nil {
			return fail(ReasonCreateContainerConfigError, err, true)
		}
	}
	if opts.HostsFile, err = p.hostsFile(); err != nil {
		return fail(ReasonCreateContainerConfigError, err, true)
	}
	if spec.TerminationMessagePath != "" {
		if opts.TerminationMessageHostPath, err = p.terminationMessageFile(pod, st.Name); err != nil {
			return fail(ReasonCreateContainerConfigError, err, true)
		}
	}
	config, err := criconfig.BuildContainerConfig(ctx, pod, spec, opts)
	if err != nil {
		return fail(ReasonCreateContainerConfigError, err, true)
	}
	applyDebugDecision(config, decision)
	if err := os.MkdirAll(filepath.Join(p.sandboxConfig.GetLogDirectory(), st.Name), 0o755); err != nil {
		return fail(ReasonCreateContainerError, fmt.Errorf("create container log directory: %w", err), true)
	}
	if st.Replaces != "" {
		if err := p.replace(ctx, st); err != nil {
			return fail(ReasonCreateContainerError, err, true)
		}
	}
	id, err := p.Runtime.CreateContainer(ctx, p.sandboxID, config, p.sandboxConfig)
	if err != nil {
		return fail(ReasonCreateContainerError, err, true)
	}
	p.Recorder.Eventf(ref, v1.EventTypeNormal, "Created", "Created container: %s", st.Name)
	if st.Type == criconfig.ContainerTypeEphemeral && p.Records != nil {
		// Durable before it can run: from here on, whatever the runtime
		// or the agent lose, this debug container is never created again.
		// A failed write still starts it: the runtime and the pod's status
		// remain witnesses, and a debugger that never runs is worse.
		rec := p.state.Records[st.Name]
		rec.ContainerID = id
		_ = p.putRecord(ctx, st.Name, rec)
	}
	if st.Type == criconfig.ContainerTypeEphemeral {
		p.audit(ctx, st, decision, id)
	}
	if err := p.Runtime.StartContainer(ctx, id); err != nil {
		if status.Code(err) == codes.Unavailable {
			// The connection broke during the call: the runtime went
			// away (a restart) and may have kept remains of it.
			p.noteInterruptedStart(ctx, st, id)
		}
		return fail(ReasonRunContainerError, err, true)
	}
	p.Recorder.Eventf(ref, v1.EventTypeNormal, "Started", "Started container %s", st.Name)
	p.limitPids(ctx, st, id, decision)
	if w, err := p.postStart(ctx, st, spec, id); err != nil {
		return w, err
	}
	logger.Info("Started container", "containerID", id, "restartCount", st.RestartCount)
	return podstate.Waiting{}, nil
}

// noteInterruptedStart keeps in the start record of ephemeral container id
// that a start of it was interrupted: the runtime went away during the
// call, or the agent did (the container is still CREATED when the agent
// comes back). The runtime may keep remains of that start which make the
// next one fail before the task exists; the record lets the plan tell that
// failure, which never ran the command, from the container's own.
func (p *podSync) noteInterruptedStart(ctx context.Context, st StartAction, id string) {
	if st.Type != criconfig.ContainerTypeEphemeral || p.Records == nil || p.state.Records[st.Name].StartInterrupted == id {
		return
	}
	rec := p.state.Records[st.Name]
	rec.StartInterrupted = id
	_ = p.putRecord(ctx, st.Name, rec)
}

// postStart runs the container's postStart hook, as the kubelet does right
// after StartContainer: the container does not count as started before it
// returns. A failing hook gets a FailedPostStartHook Event, and the
// container is killed for its restart policy to restart it, waiting as
// PostStartHookError meanwhile.
func (p *podSync) postStart(ctx context.Context, st StartAction, spec *v1.Container, id string) (podstate.Waiting, error) {
	if spec.Lifecycle == nil || spec.Lifecycle.PostStart == nil {
		return podstate.Waiting{}, nil
	}
	logger := klog.FromContext(ctx).WithValues("containerName", st.Name, "containerID", id)
	msg, err := p.runHook(ctx, p.pod, id, spec, spec.Lifecycle.PostStart, postStartHookTimeout)
	if err == nil {
		return podstate.Waiting{}, nil
	}
	ref := podstate.ContainerRef(p.pod, st.Type, st.Name)
	p.Recorder.Eventf(ref, v1.EventTypeWarning, ReasonFailedPostStartHook, "%s", msg)
	logger.Info("PostStart hook failed, killing the container", "err", err)
	p.Recorder.Eventf(ref, v1.EventTypeNormal, "Killing", "%s", ReasonFailedPostStartHook)
	if kerr := p.stopContainer(ctx, p.pod, id, st.Type, st.Name); kerr != nil {
		logger.Error(kerr, "Failed to kill container whose postStart hook failed")
	}
	return podstate.Waiting{Reason: ReasonPostStartHookError, Message: msg}, fmt.Errorf("postStart hook: %w", err)
}

// replace removes an ephemeral container whose start the agent's death
// aborted, so that it can be created once more. The replacement is counted
// in the start record before anything is removed, so that an agent killed
// over and over replaces at most podstate.MaxReplacements times; the record
// names no container until the new one exists, which lets the next sync
// create it should the agent die in between.
func (p *podSync) replace(ctx context.Context, st StartAction) error {
	if p.Records != nil {
		rec := p.state.Records[st.Name]
		if err := p.putRecord(ctx, st.Name, podstate.Record{Replacements: rec.Replacements + 1, LostReported: rec.LostReported}); err != nil {
			return fmt.Errorf("record replacement: %w", err)
		}
	}
	if err := p.Runtime.RemoveContainer(ctx, st.Replaces); err != nil {
		return fmt.Errorf("remove container %s whose start was aborted: %w", st.Replaces, err)
	}
	klog.FromContext(ctx).Info("Replacing ephemeral container whose start was aborted", "containerName", st.Name, "containerID", st.Replaces)
	return nil
}

// pullSecrets fetches the pod's imagePullSecrets; a missing one is skipped
// (the pull may not need it), as the kubelet does.
func (s *Syncer) pullSecrets(ctx context.Context, pod *v1.Pod) []v1.Secret {
	var out []v1.Secret
	for _, ref := range pod.Spec.ImagePullSecrets {
		sec, err := s.Secrets.Secret(ctx, pod.Namespace, ref.Name)
		if err != nil {
			klog.FromContext(ctx).V(2).Info("Unable to retrieve pull secret, the image pull may not succeed", "secret", ref.Name, "err", err)
			continue
		}
		out = append(out, *sec)
	}
	return out
}

// targetContainerID finds the CRI container whose PID namespace an
// ephemeral container with targetContainerName joins: the newest instance
// of that regular or init container. Pods sharing the pod's or the host's
// PID namespace need none.
func targetContainerID(pod *v1.Pod, state *podstate.PodState, index int) (string, error) {
	ec := pod.Spec.EphemeralContainers[index]
	shared := pod.Spec.HostPID || (pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace)
	if ec.TargetContainerName == "" || shared {
		return "", nil
	}
	for _, typ := range []criconfig.ContainerType{criconfig.ContainerTypeRegular, criconfig.ContainerTypeInit} {
		if c := state.Latest(typ, ec.TargetContainerName); c != nil {
			return c.ID, nil
		}
	}
	return "", fmt.Errorf("unable to find target container %s", ec.TargetContainerName)
}

// hostsFile writes the pod's managed hosts file, as the kubelet rewrites
// it before each container starts, and returns its path; "" when the pod
// gets none (no address yet). It is written in place, not renamed, so that
// running containers, which bind-mount it, see the new content.
func (p *podSync) hostsFile() (string, error) {
	if !criconfig.ShouldMountHostsFile(p.pod, p.podIPs) {
		return "", nil
	}
	var node []byte
	if p.pod.Spec.HostNetwork {
		src := p.cfg.NodeHostsFile
		if src == "" {
			src = criconfig.EtcHostsPath
		}
		var err error
		if node, err = os.ReadFile(src); err != nil {
			return "", fmt.Errorf("read the node's hosts file: %w", err)
		}
	}
	content, err := criconfig.HostsFile(p.pod, p.podIPs, p.cfg.DNS.ClusterDomain, node)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(p.cfg.RootDir, "pods", string(p.pod.UID))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("create pod directory: %w", err)
	}
	path := filepath.Join(dir, "etc-hosts")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		return "", fmt.Errorf("write hosts file: %w", err)
	}
	// WriteFile keeps the mode of a file that exists.
	if err := os.Chmod(path, 0o644); err != nil {
		return "", fmt.Errorf("write hosts file: %w", err)
	}
	return path, nil
}

// terminationMessageFile creates the host file bind-mounted at the
// container's terminationMessagePath.
func (s *Syncer) terminationMessageFile(pod *v1.Pod, name string) (string, error) {
	dir := filepath.Join(s.cfg.RootDir, "pods", string(pod.UID), "containers", name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("create termination message directory: %w", err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	path := filepath.Join(dir, hex.EncodeToString(b))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o666)
	if err != nil {
		return "", fmt.Errorf("create termination message file: %w", err)
	}
	f.Close()
	// The container may run as any user: the file must be writable to it.
	return path, os.Chmod(path, 0o666)
}

// runPreStop runs the container's preStop hook, bounded by timeout. A
// failing hook is reported and the container is stopped all the same.
func (s *Syncer) runPreStop(ctx context.Context, pod *v1.Pod, id string, typ criconfig.ContainerType, c *v1.Container, timeout time.Duration) {
	if msg, err := s.runHook(ctx, pod, id, c, c.Lifecycle.PreStop, timeout); err != nil {
		s.Recorder.Eventf(podstate.ContainerRef(pod, typ, c.Name), v1.EventTypeWarning, reasonFailedPreStopHook, "%s", msg)
		klog.FromContext(ctx).V(1).Info("PreStop hook failed", "containerName", c.Name, "err", err)
	}
}

// runHook runs lifecycle hook h of container c (running as CRI container
// id): exec through CRI ExecSync, httpGet, or sleep, bounded by timeout.
// It serves both preStop and postStart. On failure it returns the
// kubelet's Event message for it, which names the hook and the pod and
// carries an exec hook's output.
func (s *Syncer) runHook(ctx context.Context, pod *v1.Pod, id string, c *v1.Container, h *v1.LifecycleHandler, timeout time.Duration) (string, error) {
	// The kubelet's format.Pod.
	podName := fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
	switch {
	case h.Exec != nil:
		stdout, stderr, err := s.Runtime.ExecSync(ctx, id, h.Exec.Command, timeout)
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q",
				h.Exec.Command, c.Name, podName, err, string(append(stdout, stderr...))), err
		}
	case h.HTTPGet != nil:
		if err := httpGetHook(ctx, pod, c, h.HTTPGet, timeout); err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v", h.HTTPGet.Path, c.Name, podName, err), err
		}
	case h.Sleep != nil:
		// The timeout bounds the hook: a preStop sleep ends with the
		// grace period, so the container stops on time.
		d := min(time.Duration(h.Sleep.Seconds)*time.Second, timeout)
		if d <= 0 {
			return "", nil
		}
		select {
		case <-ctx.Done():
			err := ctx.Err()
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v", h.Sleep.Seconds, c.Name, podName, err), err
		case <-s.Clock.After(d):
		}
	}
	return "", nil
}

// httpGetHook sends an httpGet hook's request; a status of 400 or more is a
// failure.
func httpGetHook(ctx context.Context, pod *v1.Pod, c *v1.Container, h *v1.HTTPGetAction, timeout time.Duration) error {
	host := h.Host
	if host == "" {
		host = pod.Status.PodIP
	}
	port := h.Port.IntValue()
	if port == 0 {
		for _, p := range c.Ports {
			if p.Name == h.Port.String() {
				port = int(p.ContainerPort)
			}
		}
	}
	scheme := "http"
	if h.Scheme == v1.URISchemeHTTPS {
		scheme = "https"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, strconv.Itoa(port))+h.Path, nil)
	if err != nil {
		return err
	}
	for _, hd := range h.HTTPHeaders {
		req.Header.Add(hd.Name, hd.Value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP status %s", resp.Status)
	}
	return nil
}
