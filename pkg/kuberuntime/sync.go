package kuberuntime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/admission"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
	"github.com/ephemeral-agent/ephemeral-agent/pkg/volume"
)

// Config holds the node facts the sync loop puts into CRI configs.
type Config struct {
	// PodLogsDir is where pod log directories go (kubelet: /var/log/pods).
	PodLogsDir string
	// RootDir is the agent's --root-dir; termination message files live
	// under RootDir/pods/UID/containers.
	RootDir string
	// NodeName is the node's name; NodeIPs its addresses.
	NodeName string
	NodeIPs  []string
	// DNS configures pods' resolv.conf.
	DNS criconfig.DNSOptions
	// Node describes the machine for resource and security settings.
	Node criconfig.NodeConfig
	// NodeHostsFile is the node's hosts file, the base of a host-network
	// pod's (default /etc/hosts).
	NodeHostsFile string
}

// Deps are the sync loop's collaborators; see the interfaces' docs.
type Deps struct {
	Runtime  Runtime
	Pods     PodSource
	Images   Images
	Volumes  Volumes
	Secrets  Secrets
	Status   StatusSink
	Recorder Recorder
	Clock    clock.Clock
	// Services may be nil: containers then get no service variables.
	Services Services
	// Records keeps the durable start records of ephemeral containers. It
	// may be nil: "already created" then rests on the runtime and the
	// pod's reported status alone, and a container the runtime loses
	// before its status reached the API server could be created twice.
	// The Observer must read the same store (podstate.WithRecords).
	Records *podstate.RecordStore
	// Observer reads pods' runtime state. It may be nil: the Syncer then
	// reads through an Observer of its own. An embedder that also serves
	// logs or sessions (podstate.Lookup) passes one Observer to both, so
	// they share its cache.
	Observer *podstate.Observer
	// Metrics may be nil.
	Metrics *Metrics
	// Prober runs the containers' probes. It may be nil: no probes run,
	// and every running container counts as started and ready.
	Prober Prober
	// RuntimeClasses may be nil: every sandbox runs with the runtime's
	// default handler.
	RuntimeClasses RuntimeClasses
	// Gate decides which pods the node runs. It may be nil: every pod is
	// admitted.
	Gate Admission
	// Cgroups gives pods their cgroups. It may be nil: sandboxes get no
	// cgroup_parent and the runtime chooses.
	Cgroups PodCgroups
	// DebugPolicy may be nil: every debug container runs, without caps
	// or time limits, as with the kubelet. Denials and the agent's own
	// endings are durable only with Records.
	DebugPolicy DebugPolicy
	// Sessions may be nil: no debug container ever counts as idle.
	Sessions Sessions
	// Pids may be nil: a policy's pids caps are then not applied (and a
	// Warning Event says so).
	Pids ContainerPids
	// Audit may be nil: debug containers created or refused are then only
	// logged.
	Audit DebugAudit
	// TargetNamespaces holds back ephemeral containers with a target
	// container when the runtime does not share its PID namespace. It may
	// be nil: they start unchecked, as with the kubelet.
	TargetNamespaces TargetNamespaces
}

// Syncer brings one pod at a time to its spec: observe the runtime, Plan,
// execute, report status. It is safe for concurrent use on different pods;
// the caller (Workers) never syncs one pod twice at once.
type Syncer struct {
	cfg Config
	Deps
}

// NewSyncer returns a Syncer.
func NewSyncer(cfg Config, deps Deps) *Syncer {
	if deps.Observer == nil {
		deps.Observer = podstate.NewObserver(deps.Runtime, podstate.WithRecords(deps.Records))
	}
	return &Syncer{cfg: cfg, Deps: deps}
}

// errRetry marks a sync that left work undone (a container did not start,
// a kill or the sandbox failed; the Events and statuses say which): the
// worker retries it with backoff.
var errRetry = errors.New("pod sync left work undone")

// SyncPod syncs the pod with that UID once. It returns when the pod wants
// its next sync without any event, or that nothing of the pod is left to
// sync, and an error when the sync must be retried with backoff.
func (s *Syncer) SyncPod(ctx context.Context, uid types.UID) (SyncResult, error) {
	pod, exists := s.Pods.GetPodByUID(uid)
	logger := klog.FromContext(ctx).WithValues("podUID", uid)
	if exists {
		logger = logger.WithValues("pod", klog.KObj(pod))
	}
	ctx = klog.NewContext(ctx, logger)

	state, err := s.Observer.Observe(ctx, uid)
	if err != nil {
		return SyncResult{}, err
	}
	if !exists {
		return s.removePod(ctx, uid, state)
	}
	if s.Gate != nil {
		if r, first := s.Gate.Admit(ctx, pod); !r.Admit {
			return SyncResult{}, s.rejectPod(ctx, pod, state, r, first)
		}
	}
	s.probe(pod, state)

	p := &podSync{Syncer: s, pod: pod, state: state, waiting: map[podstate.ContainerKey]podstate.Waiting{}}
	var volumeErr error
	// Volumes serve containers that start or run; a pod being deleted or
	// finished needs none (and its namespace may refuse new tokens).
	if pod.DeletionTimestamp == nil && !podFinished(pod, state) && !podstate.PastActiveDeadline(pod, s.Clock.Now()) {
		if p.mounter, err = s.Volumes.SetUp(ctx, pod); err != nil {
			// One Event per volume, as the kubelet's; an embedder's volume
			// manager may return plain errors, which get one Event.
			failures := volume.FailedMounts(err)
			for _, f := range failures {
				s.Recorder.Eventf(pod, v1.EventTypeWarning, volume.FailedMountReason, "%s", f.Error())
			}
			if len(failures) == 0 {
				s.Recorder.Eventf(pod, v1.EventTypeWarning, volume.FailedMountReason, "%v", err)
			}
			// Only refreshes failed: the volumes still hold their earlier
			// content, and running containers are not held back for it.
			if len(failures) == 0 || !allStale(failures) {
				volumeErr = fmt.Errorf("set up volumes: %w", err)
			}
		}
	} else if pod.DeletionTimestamp != nil {
		// Nothing of a pod being deleted waits for an image any more.
		s.Images.ForgetPod(uid)
	}

	s.sessions(state)
	actions := Plan(pod, state, s.Clock.Now())
	if volumeErr != nil {
		// Nothing that needs the volumes starts without them; the pod
		// waits in ContainerCreating and the Events say why. A debugger
		// that mounts none still starts: a pod whose volumes fail is one
		// to debug.
		actions = actions.withoutVolumes(pod)
	}
	failed := p.execute(ctx, actions)

	if actions.KillPod || actions.CreateSandbox || len(actions.ContainersToStart) > 0 || len(actions.ContainersToKill) > 0 || len(actions.EphemeralToEnd) > 0 {
		kept := state.Records
		if state, err = s.Observer.Observe(ctx, uid); err != nil {
			return SyncResult{}, err
		}
		if s.Records == nil {
			// This sync's denials and endings, which no store kept.
			state.Records = kept
		}
		s.probe(pod, state)
	}
	if !endedUnrun(pod, state) {
		s.Status.SetPodStatus(pod, state, p.waiting)
	}

	if pod.DeletionTimestamp != nil && !hasRunning(state) {
		if err := s.Status.DeletePod(ctx, pod); err != nil {
			return SyncResult{}, fmt.Errorf("delete terminated pod: %w", err)
		}
	}
	if volumeErr != nil {
		return SyncResult{}, volumeErr
	}
	if failed {
		return SyncResult{RequeueAfter: actions.RequeueAfter}, errRetry
	}
	return SyncResult{RequeueAfter: actions.RequeueAfter}, nil
}

// rejectPod reports a pod the node rejected at admission, as the
// kubelet's rejectPod: a Warning Event with the reason, once, and the
// Failed status. Nothing of it runs: only a pod that ran before an agent
// restart and is rejected now has anything to stop. A rejected pod being
// deleted is deleted at once, as nothing of it runs.
func (s *Syncer) rejectPod(ctx context.Context, pod *v1.Pod, state *podstate.PodState, r admission.Result, first bool) error {
	if first {
		s.Recorder.Eventf(pod, v1.EventTypeWarning, r.Reason, "%s", r.Message)
	}
	if hasRunning(state) {
		if err := s.killPod(ctx, pod, state); err != nil {
			return fmt.Errorf("kill rejected pod: %w", err)
		}
	}
	if rj, ok := s.Status.(PodRejecter); ok {
		rj.RejectPod(pod, r.Reason, r.Message)
	}
	if pod.DeletionTimestamp != nil {
		if err := s.Status.DeletePod(ctx, pod); err != nil {
			return fmt.Errorf("delete rejected pod: %w", err)
		}
	}
	return nil
}

// endedUnrun reports a pod that ended before anything of it ran: no
// runtime object, no container status. That is a pod rejected at
// admission, seen again after an agent restart: the status it was
// rejected with is final and there is nothing to add to it.
func endedUnrun(pod *v1.Pod, state *podstate.PodState) bool {
	st := &pod.Status
	return (st.Phase == v1.PodFailed || st.Phase == v1.PodSucceeded) &&
		len(state.Sandboxes) == 0 && len(state.Containers) == 0 &&
		len(st.InitContainerStatuses) == 0 && len(st.ContainerStatuses) == 0 && len(st.EphemeralContainerStatuses) == 0
}

// sessions puts into state when its running debug containers with an idle
// timeout last had a session, for the plan.
func (s *Syncer) sessions(state *podstate.PodState) {
	if s.Sessions == nil {
		return
	}
	for i := range state.Containers {
		c := &state.Containers[i]
		if c.IdleTimeout <= 0 || !c.Running() {
			continue
		}
		if state.Sessions == nil {
			state.Sessions = map[string]podstate.SessionActivity{}
		}
		last, active := s.Sessions.LastActivity(c.ID)
		state.Sessions[c.ID] = podstate.SessionActivity{Active: active, Last: last}
	}
}

// probe starts and stops the pod's probes for the containers that run in
// state, and puts what they say into state.Probes, for the plan and the
// status.
func (s *Syncer) probe(pod *v1.Pod, state *podstate.PodState) {
	if s.Prober != nil {
		state.Probes = s.Prober.UpdatePod(pod, state)
	}
}

// HasPod reports whether anything of the pod with that UID may still run,
// or must still be removed by a sync: the pod is in the API, or the runtime
// holds a sandbox of it. It answers true when the runtime cannot be read,
// so that nothing is removed on a guess. Cleanups of what pods leave on the
// node (volumes at start) ask it which pods are gone for good.
func (s *Syncer) HasPod(ctx context.Context, uid types.UID) bool {
	if _, ok := s.Pods.GetPodByUID(uid); ok {
		return true
	}
	sandboxes, err := s.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{criconfig.LabelPodUID: string(uid)}})
	return err != nil || len(sandboxes) > 0
}

// podSync is one sync of one pod: what carrying out its plan reads and
// builds up, so the steps need not pass it to each other.
type podSync struct {
	*Syncer
	pod *v1.Pod
	// state is the runtime's state the plan was made from.
	state *podstate.PodState
	// mounter maps volumeMounts; nil when the pod needs no volumes.
	mounter Mounter
	// sandboxID and sandboxConfig are the sandbox new containers join,
	// and podIPs its addresses; set once a container is to start.
	sandboxID     string
	sandboxConfig *runtimeapi.PodSandboxConfig
	podIPs        []string
	// waiting collects why containers did not start, for the status.
	waiting map[podstate.ContainerKey]podstate.Waiting
}

// execute carries out actions in their documented order. Failures to start
// a container are recorded in p.waiting and reported by the return value;
// they never stop the other containers from starting.
func (p *podSync) execute(ctx context.Context, a Actions) (failed bool) {
	logger := klog.FromContext(ctx)
	pod := p.pod
	if a.KillPod {
		if a.DeadlineExceeded {
			p.Recorder.Eventf(pod, v1.EventTypeNormal, podstate.ReasonDeadlineExceeded, podstate.MessageDeadlineExceeded)
		}
		if a.CreateSandbox && p.state.LatestSandbox() != nil {
			p.Recorder.Eventf(pod, v1.EventTypeNormal, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
		}
		if err := p.killPod(ctx, pod, p.state); err != nil {
			p.Recorder.Eventf(pod, v1.EventTypeWarning, "FailedKillPod", "error killing pod: %v", err)
			logger.Error(err, "Failed to kill pod")
			return true
		}
	}
	for _, k := range a.ContainersToKill {
		p.Recorder.Eventf(podstate.ContainerRef(pod, k.Type, k.Name), v1.EventTypeNormal, "Killing", "%s", k.Message)
		if err := p.stopContainerGrace(ctx, pod, k.ContainerID, k.Type, k.Name, k.GracePeriod); err != nil {
			logger.Error(err, "Failed to stop container", "containerName", k.Name, "containerID", k.ContainerID)
			return true
		}
	}
	for _, id := range a.ContainersToRemove {
		if err := p.Runtime.RemoveContainer(ctx, id); err != nil {
			logger.V(2).Info("Failed to remove old container", "containerID", id, "err", err)
		}
	}
	for _, id := range a.SandboxesToRemove {
		p.removeSandbox(ctx, id)
	}
	p.recordEphemeral(ctx)
	for _, e := range a.EphemeralToEnd {
		if err := p.endEphemeral(ctx, e); err != nil {
			logger.Error(err, "Failed to end debug container", "containerName", e.Name)
			failed = true
		}
	}
	for _, name := range a.EphemeralLost {
		p.reportLost(ctx, name)
	}
	for _, b := range a.BackOff {
		p.waiting[podstate.ContainerKey{Type: b.Type, Name: b.Name}] = podstate.Waiting{Reason: "CrashLoopBackOff", Message: b.Message}
		p.Recorder.Eventf(podstate.ContainerRef(pod, b.Type, b.Name), v1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", b.Name, pod.Name, pod.Namespace, pod.UID)
	}
	if len(a.ContainersToStart) == 0 {
		return failed
	}
	if err := p.prepareSandbox(ctx, a); err != nil {
		logger.Error(err, "Failed to prepare pod sandbox")
		return true
	}

	for _, st := range a.ContainersToStart {
		eph := st.Type == criconfig.ContainerTypeEphemeral
		if eph {
			p.Metrics.ephemeralPlanned(pod.UID, st.Name, p.Clock.Now())
		}
		w, err := p.startContainer(ctx, st)
		if err == nil {
			if eph {
				p.Metrics.ephemeralStarted(pod.UID, st.Name, p.Clock.Now())
			}
			continue
		}
		if errors.Is(err, errDenied) {
			p.Metrics.ephemeralEnded(pod.UID, st.Name, debugapi.ReasonPolicyDenied)
			continue
		}
		failed = true
		p.waiting[podstate.ContainerKey{Type: st.Type, Name: st.Name}] = w
		if eph && w.Reason != ReasonPulling {
			p.Metrics.ephemeralFailed(w.Reason)
		}
		logger.V(1).Info("Failed to start container", "containerName", st.Name, "containerType", st.Type, "reason", w.Reason, "err", err)
		// An init container that cannot start blocks those after it;
		// regular and ephemeral containers go on independently.
		if st.Type == criconfig.ContainerTypeInit {
			return true
		}
	}
	return failed
}

// removeSandbox removes a sandbox the plan found no longer needed, as the
// kubelet's container GC does: stopped first, in case something (an agent
// killed mid-way) left it running, and only if the runtime lists no
// container in it, whatever its labels: removing a sandbox removes its
// containers, and an ephemeral container's is the witness that it ran.
// Failures are logged only; the next sync plans it again.
func (p *podSync) removeSandbox(ctx context.Context, id string) {
	logger := klog.FromContext(ctx).WithValues("sandboxID", id)
	held, err := p.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: id})
	if err != nil || len(held) > 0 {
		logger.V(4).Info("Keeping old pod sandbox", "containers", len(held), "err", err)
		return
	}
	logger.V(4).Info("Removing old pod sandbox")
	if err := p.Runtime.StopPodSandbox(ctx, id); err != nil {
		logger.Error(err, "Failed to stop sandbox before removing")
		return
	}
	if err := p.Runtime.RemovePodSandbox(ctx, id); err != nil {
		logger.Error(err, "Failed to remove sandbox")
	}
}

// recordEphemeral keeps a start record for every ephemeral container the
// runtime holds, naming the container it holds. Records are written when a
// container is created; this closes what a crash or a failed write left
// open (a container created by an agent killed before its record, a
// replacement whose new container was never recorded).
func (p *podSync) recordEphemeral(ctx context.Context) {
	if p.Records == nil {
		return
	}
	for _, ec := range p.pod.Spec.EphemeralContainers {
		cur := p.state.Latest(criconfig.ContainerTypeEphemeral, ec.Name)
		if cur == nil {
			continue
		}
		rec, ok := p.state.Records[ec.Name]
		if ok && rec.ContainerID == cur.ID {
			continue
		}
		rec.ContainerID = cur.ID
		p.putRecord(ctx, ec.Name, rec)
	}
}

// putRecord writes the start record of ephemeral container name and keeps
// the sync's state in step with it. Without a store (an embedder's choice)
// the record lives in this sync's state only.
func (p *podSync) putRecord(ctx context.Context, name string, rec podstate.Record) error {
	if p.Records != nil {
		if err := p.Records.Put(p.pod.UID, name, rec); err != nil {
			klog.FromContext(ctx).Error(err, "Failed to write start record", "containerName", name)
			return err
		}
	}
	if p.state.Records == nil {
		p.state.Records = map[string]podstate.Record{}
	}
	p.state.Records[name] = rec
	return nil
}

// reportLost tells, once, that the runtime lost an ephemeral container
// that was created: it is not created again, and its status says
// Terminated. Once is kept in the start record.
func (p *podSync) reportLost(ctx context.Context, name string) {
	rec, ok := p.state.Records[name]
	if ok && rec.LostReported {
		return
	}
	if p.Records == nil {
		// Without records, the reported status is the memory: once it
		// says Terminated, the loss was told.
		if cs := podstate.ReportedEphemeral(p.pod, name); cs != nil && cs.State.Terminated != nil {
			return
		}
	}
	p.Recorder.Eventf(podstate.ContainerRef(p.pod, criconfig.ContainerTypeEphemeral, name), v1.EventTypeWarning, ReasonContainerLost,
		"Container %s was removed from the container runtime; an ephemeral container is never started twice, so it is reported terminated", name)
	klog.FromContext(ctx).Info("Ephemeral container lost by the runtime, not started again", "containerName", name, "containerID", rec.ContainerID)
	if p.Records != nil {
		rec.LostReported = true
		if rec.ContainerID == "" {
			// The witness was the pod's status or a damaged record; a
			// record without a container would read as a replacement
			// under way, so it names the container the status names.
			rec.ContainerID = "unknown"
			if cs := podstate.ReportedEphemeral(p.pod, name); cs != nil && cs.ContainerID != "" {
				rec.ContainerID = cs.ContainerID
				if _, id, ok := strings.Cut(cs.ContainerID, "://"); ok {
					rec.ContainerID = id
				}
			}
		}
		_ = p.putRecord(ctx, name, rec)
	}
}

// prepareSandbox sets the sandbox new containers join: the plan's, or a
// new one when the plan asks for it, with its config and addresses.
func (p *podSync) prepareSandbox(ctx context.Context, a Actions) error {
	p.sandboxID = a.SandboxID
	var attempt uint32
	if sb := p.state.LatestSandbox(); sb != nil {
		attempt = sb.Attempt
	}
	if a.CreateSandbox {
		attempt = a.SandboxAttempt
	}
	cgroupParent, err := p.ensureCgroup(ctx)
	if err != nil {
		return err
	}
	p.sandboxConfig, err = criconfig.BuildSandboxConfig(p.pod, criconfig.SandboxOptions{
		Attempt: attempt, PodLogsDir: p.cfg.PodLogsDir, DNS: p.cfg.DNS, Node: p.cfg.Node, CgroupParent: cgroupParent,
	})
	if err == nil && a.CreateSandbox {
		p.sandboxID, err = p.createSandbox(ctx)
	}
	if err != nil {
		p.Recorder.Eventf(p.pod, v1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
		return err
	}
	p.podIPs, err = p.sandboxIPs(ctx, a.CreateSandbox)
	return err
}

// ensureCgroup creates or updates the pod's cgroup, which the sandbox and
// so every container of the pod, ephemeral ones included, run below, and
// returns its name for the sandbox config.
func (p *podSync) ensureCgroup(ctx context.Context) (string, error) {
	if p.Cgroups == nil {
		return "", nil
	}
	parent, err := p.Cgroups.EnsurePod(ctx, p.pod)
	if err != nil {
		p.Recorder.Eventf(p.pod, v1.EventTypeWarning, "FailedCreatePodContainer", "unable to ensure pod container exists: %v", err)
		return "", fmt.Errorf("ensure pod cgroup: %w", err)
	}
	return parent, nil
}

func (p *podSync) createSandbox(ctx context.Context) (string, error) {
	// The runtime writes container logs below this directory but does not
	// create it.
	if err := os.MkdirAll(p.sandboxConfig.GetLogDirectory(), 0o755); err != nil {
		return "", fmt.Errorf("create pod log directory: %w", err)
	}
	handler, err := p.runtimeHandler(ctx)
	if err != nil {
		return "", err
	}
	id, err := p.Runtime.RunPodSandbox(ctx, p.sandboxConfig, handler)
	if err != nil {
		return "", err
	}
	klog.FromContext(ctx).V(2).Info("Created pod sandbox", "sandboxID", id, "attempt", p.sandboxConfig.GetMetadata().GetAttempt(), "runtimeHandler", handler)
	return id, nil
}

// runtimeHandler is the CRI runtime handler of the pod's RuntimeClass.
func (p *podSync) runtimeHandler(ctx context.Context) (string, error) {
	if p.RuntimeClasses == nil {
		return "", nil
	}
	h, err := p.RuntimeClasses.LookupRuntimeHandler(p.pod.Spec.RuntimeClassName)
	if err == nil && h != "" {
		klog.FromContext(ctx).V(2).Info("Running pod with runtime handler", "runtimeHandler", h)
	}
	return h, err
}

// sandboxIPs returns the pod's addresses: the sandbox's, or the node's for
// a host-network pod. Those of a sandbox created in this sync are asked
// for; they are not in the observed state yet.
func (p *podSync) sandboxIPs(ctx context.Context, fresh bool) ([]string, error) {
	if p.pod.Spec.HostNetwork {
		return p.cfg.NodeIPs, nil
	}
	if !fresh {
		if sb := p.state.LatestSandbox(); sb != nil && sb.ID == p.sandboxID {
			return sb.IPs, nil
		}
	}
	resp, err := p.Runtime.PodSandboxStatus(ctx, p.sandboxID, false)
	if err != nil {
		return nil, fmt.Errorf("get status of pod sandbox %s: %w", p.sandboxID, err)
	}
	return podstate.SandboxIPs(resp.GetStatus()), nil
}

// killPod stops every running container in parallel, honouring the grace
// period and preStop hooks, sidecars after the main containers in reverse
// order (terminationOrder), then stops the pod's ready sandboxes.
func (s *Syncer) killPod(ctx context.Context, pod *v1.Pod, state *podstate.PodState) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		names []string
	)
	for i := range state.Containers {
		if c := &state.Containers[i]; c.Running() || c.Created() {
			names = append(names, c.Name)
		}
	}
	order := newTerminationOrder(s.Clock, pod, names)
	for i := range state.Containers {
		c := &state.Containers[i]
		if !c.Running() && !c.Created() {
			continue
		}
		wg.Go(func() {
			defer order.done(c.Name)
			s.Recorder.Eventf(podstate.ContainerRef(pod, c.Type, c.Name), v1.EventTypeNormal, "Killing", "Stopping container %s", c.Name)
			if err := s.stopContainerInTurn(ctx, pod, c.ID, c.Type, c.Name, nil, order); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, sb := range state.Sandboxes {
		if sb.Ready {
			if err := s.Runtime.StopPodSandbox(ctx, sb.ID); err != nil {
				return fmt.Errorf("stop pod sandbox %s: %w", sb.ID, err)
			}
		}
	}
	return nil
}

// stopContainer runs the container's preStop hook, then stops it with what
// is left of the grace period.
func (s *Syncer) stopContainer(ctx context.Context, pod *v1.Pod, id string, typ criconfig.ContainerType, name string) error {
	return s.stopContainerGrace(ctx, pod, id, typ, name, nil)
}

// stopContainerGrace is stopContainer with the grace period override
// instead of the pod's, when set (a failed probe's own
// terminationGracePeriodSeconds).
func (s *Syncer) stopContainerGrace(ctx context.Context, pod *v1.Pod, id string, typ criconfig.ContainerType, name string, override *int64) error {
	return s.stopContainerInTurn(ctx, pod, id, typ, name, override, nil)
}

// stopContainerInTurn is stopContainerGrace that, after the preStop hook,
// waits for the container's turn in order (nil: none), as the kubelet's
// killContainer: the wait spends the grace period too.
func (s *Syncer) stopContainerInTurn(ctx context.Context, pod *v1.Pod, id string, typ criconfig.ContainerType, name string, override *int64, order *terminationOrder) error {
	grace := gracePeriod(pod)
	if override != nil && pod.DeletionGracePeriodSeconds == nil {
		grace = *override
	}
	start := s.Clock.Now()
	if spec := podstate.ContainerSpec(pod, typ, name); spec != nil && spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil && grace > 0 {
		s.runPreStop(ctx, pod, id, typ, spec, time.Duration(grace)*time.Second)
		grace -= int64(s.Clock.Since(start) / time.Second)
		// As the kubelet: the container always gets a last moment to stop.
		grace = max(grace, 2)
	}
	if waited := order.wait(ctx, name, time.Duration(grace)*time.Second); waited > 0 {
		grace = max(grace-int64(waited/time.Second), 2)
	}
	if err := s.Runtime.StopContainer(ctx, id, grace); err != nil {
		return fmt.Errorf("stop container %s: %w", name, err)
	}
	return nil
}

// removePod removes every runtime object, log and volume of a pod that no
// longer exists in the API, and forgets it everywhere. It reports the pod
// gone once the runtime holds nothing of it, observed again after the
// removal, and its volumes are torn down: the pod then leaves the workers.
func (s *Syncer) removePod(ctx context.Context, uid types.UID, state *podstate.PodState) (SyncResult, error) {
	if s.Gate != nil {
		s.Gate.Forget(uid)
	}
	if len(state.Sandboxes) > 0 || len(state.Containers) > 0 {
		if err := s.removeRuntimeObjects(ctx, state); err != nil {
			return SyncResult{}, err
		}
		// What is gone is seen gone, so that the Observer's cache of
		// the pod is emptied too; what a runtime kept despite the calls
		// is tried again.
		left, err := s.Observer.Observe(ctx, uid)
		if err != nil {
			return SyncResult{}, err
		}
		if len(left.Sandboxes) > 0 || len(left.Containers) > 0 {
			return SyncResult{}, fmt.Errorf("runtime still holds %d sandboxes and %d containers of a removed pod", len(left.Sandboxes), len(left.Containers))
		}
	}
	s.removeCgroup(ctx, uid)
	if dirs, _ := filepath.Glob(filepath.Join(s.cfg.PodLogsDir, "*_"+string(uid))); len(dirs) > 0 {
		for _, d := range dirs {
			_ = os.RemoveAll(d)
		}
	}
	s.Status.ForgetPod(uid)
	s.Images.ForgetPod(uid)
	s.Metrics.forgetPod(uid)
	if s.Prober != nil {
		s.Prober.ForgetPod(uid)
	}
	if err := s.Volumes.TearDown(ctx, uid); err != nil {
		return SyncResult{}, err
	}
	return SyncResult{Gone: true}, nil
}

// removeRuntimeObjects stops and removes every container and sandbox of
// state.
func (s *Syncer) removeRuntimeObjects(ctx context.Context, state *podstate.PodState) error {
	klog.FromContext(ctx).V(1).Info("Removing runtime objects of a pod that no longer exists")
	for i := range state.Containers {
		c := &state.Containers[i]
		if c.Running() {
			// The API object is gone: its grace period was spent or
			// waived already.
			if err := s.Runtime.StopContainer(ctx, c.ID, 0); err != nil {
				return fmt.Errorf("stop container %s: %w", c.ID, err)
			}
		}
		if err := s.Runtime.RemoveContainer(ctx, c.ID); err != nil {
			return fmt.Errorf("remove container %s: %w", c.ID, err)
		}
	}
	for _, sb := range state.Sandboxes {
		if err := s.Runtime.StopPodSandbox(ctx, sb.ID); err != nil {
			return fmt.Errorf("stop pod sandbox %s: %w", sb.ID, err)
		}
		if err := s.Runtime.RemovePodSandbox(ctx, sb.ID); err != nil {
			return fmt.Errorf("remove pod sandbox %s: %w", sb.ID, err)
		}
	}
	return nil
}

// removeCgroup removes the cgroup of a pod whose sandboxes are gone. A
// failure (a process still in it) is logged only: the cgroup manager's
// sweep of pods gone for good tries again.
func (s *Syncer) removeCgroup(ctx context.Context, uid types.UID) {
	if s.Cgroups == nil {
		return
	}
	if err := s.Cgroups.RemovePod(ctx, uid); err != nil {
		klog.FromContext(ctx).Error(err, "Failed to remove pod cgroup")
	}
}

func allStale(failures []*volume.SetUpError) bool {
	for _, f := range failures {
		if !f.Stale {
			return false
		}
	}
	return true
}

// gracePeriod is how long containers get to stop: the deletion's grace
// period once deletion started, the spec's otherwise (kubelet default 30s).
func gracePeriod(pod *v1.Pod) int64 {
	if pod.DeletionGracePeriodSeconds != nil {
		return *pod.DeletionGracePeriodSeconds
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return 30
}
