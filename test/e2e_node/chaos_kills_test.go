//go:build e2e

package e2enode

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// chaosEvent is one step of the kill-and-restart run's timeline.
type chaosEvent struct {
	at   time.Duration
	kind string // "add", "kill", "agent-up", "runtime-restart"
	// debugger is the index of the debugger an "add" adds.
	debugger int
}

// chaosTimeline spreads scale's debugger additions, agent kills and
// containerd restarts at random moments over a window of about 0.6s per
// debugger. An agent comes back 0.2-2s after each kill (additions in
// between reach an agent that is down); a kill that falls while the agent is
// down waits for its return.
func chaosTimeline(sc chaosScale, rng *rand.Rand) []chaosEvent {
	window := time.Duration(sc.Ephemeral) * 600 * time.Millisecond
	at := func() time.Duration { return time.Duration(rng.Int64N(int64(window))) }
	var evs []chaosEvent
	for i := range sc.Ephemeral {
		evs = append(evs, chaosEvent{at: at(), kind: "add", debugger: i})
	}
	for range sc.Kills {
		evs = append(evs, chaosEvent{at: at(), kind: "kill"})
	}
	for range sc.RuntimeRestarts {
		evs = append(evs, chaosEvent{at: at(), kind: "runtime-restart"})
	}
	slices.SortStableFunc(evs, func(a, b chaosEvent) int { return int(a.at - b.at) })
	// Each kill gets its agent's return; kills during a down time wait.
	var out []chaosEvent
	var upAt time.Duration
	for _, e := range evs {
		if e.kind == "kill" {
			e.at = max(e.at, upAt+100*time.Millisecond)
			upAt = e.at + 200*time.Millisecond + time.Duration(rng.Int64N(int64(1800*time.Millisecond)))
			out = append(out, e, chaosEvent{at: upAt, kind: "agent-up"})
			continue
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b chaosEvent) int { return int(a.at - b.at) })
	return out
}

// TestChaosKillsAndRestarts adds counting debuggers across pods while the
// agent is SIGKILLed and containerd restarted at random moments: every
// debug command runs exactly once (counted by the command itself in the
// emptyDir it shares with the app), the runtime holds exactly one
// container per debugger, and every status ends Terminated.
func TestChaosKillsAndRestarts(t *testing.T) {
	sc := chaos(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EA_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("EA_CHAOS_SEED=%q: %v", s, err)
		}
	}
	t.Logf("scale %s, seed %d (EA_CHAOS_SEED reruns this timeline)", sc.Name, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	a := startAgent(t)
	waitNodeReady(t, v1.ConditionTrue, 60*time.Second)
	ns := onceNamespace(t)
	rs := criClient(t)
	pods := make([]*v1.Pod, sc.Pods)
	for i := range pods {
		createPod(t, sharedAppPod(ns, fmt.Sprintf("app-%02d", i)))
	}
	for i := range pods {
		pods[i] = waitPod(t, ns, fmt.Sprintf("app-%02d", i), "Running", 180*time.Second, phaseIs(v1.PodRunning))
	}

	// Debugger i runs in pod i%Pods; most end within seconds, every
	// fifth outlives a few faults.
	name := func(i int) string { return fmt.Sprintf("dbg-%03d", i) }
	podOf := func(i int) *v1.Pod { return pods[i%len(pods)] }
	timeline := chaosTimeline(sc, rng)
	start := time.Now()
	kills, restarts := 0, 0
	var lastFault time.Time
	for _, e := range timeline {
		time.Sleep(time.Until(start.Add(e.at)))
		switch e.kind {
		case "add":
			sleep := 1 + rng.IntN(3)
			if e.debugger%5 == 4 {
				sleep = 15
			}
			addEphemeral(t, podOf(e.debugger), countingDebugger(name(e.debugger), sleep))
		case "kill":
			a.kill()
			kills++
			lastFault = time.Now()
		case "agent-up":
			a = startAgent(t)
		case "runtime-restart":
			clusterScript(t, "stop", "containerd")
			clusterScript(t, "start", "containerd")
			restarts++
			lastFault = time.Now()
		}
	}
	t.Logf("timeline of %d events done in %s: %d kills, %d containerd restarts", len(timeline), time.Since(start).Round(time.Second), kills, restarts)
	recordFigure(t, "kills", kills)
	recordFigure(t, "runtime_restarts", restarts)
	recordFigure(t, "ephemeral", sc.Ephemeral)

	// Every debugger's status ends Terminated. The time from the last
	// fault until then includes the last debuggers' own run time: a
	// figure of the run, not the agent's convergence (TestChaosAPIServerOutage
	// measures that).
	waitFor(t, "every debugger Terminated", 5*time.Minute, func(ctx context.Context) (bool, error) {
		for i := range pods {
			pods[i] = getPod(t, ns, pods[i].Name)
		}
		for i := range sc.Ephemeral {
			if s := ephemeralStatus(podOf(i), name(i)); s == nil || s.State.Terminated == nil {
				return false, fmt.Errorf("%s/%s: %+v", podOf(i).Name, name(i), s)
			}
		}
		return true, nil
	})
	converged := time.Since(lastFault).Seconds()
	t.Logf("every status Terminated %.1fs after the last fault", converged)
	recordFigure(t, "kills_settled_s", float64(int(converged*10))/10)

	// A late duplicate would show within seconds of the last restart.
	time.Sleep(10 * time.Second)
	duplicates, lost, lostStatuses, aborted, exitsLost := 0, 0, 0, 0, 0
	for i := range pods {
		pods[i] = getPod(t, ns, pods[i].Name)
	}
	for i := range sc.Ephemeral {
		pod, n := podOf(i), name(i)
		ran := runs(t, pod, n)
		s := ephemeralStatus(pod, n)
		var term *v1.ContainerStateTerminated
		if s != nil {
			term = s.State.Terminated
		}
		cs := criContainers(t, rs, string(pod.UID), n)
		switch {
		case ran > 1 || len(cs) > 1:
			duplicates++
			t.Errorf("%s/%s: ran %d times, the runtime holds %s: a duplicate", pod.Name, n, ran, describeCRI(cs))
		case ran == 0 && (ranOnce(ran, term) || startOutcomeUnknown(term)):
			// The runtime lost the outcome of a start it was running
			// when the agent or the runtime itself died: the command may
			// have begun, so it is never run again (a second run is the
			// worse failure), and the status says so.
			aborted++
			t.Logf("NOTE: %s/%s: a start whose outcome the runtime lost, status %+v", pod.Name, n, term)
		case ran == 0:
			lost++
			t.Errorf("%s/%s: never ran (status %+v, runtime %s): a lost debugger", pod.Name, n, s, describeCRI(cs))
		}
		// containerd restarted while the command ran or between its
		// exit and containerd's checkpoint of that exit: it reports exit
		// 255, reason Unknown, or cannot load the container at all
		// (CONTAINER_UNKNOWN, reported as the kubelet reports it). The
		// runtime lost the exit code; the agent reports what it knows.
		runtimeLostExit := ran == 1 && term != nil &&
			(term.Reason == "Unknown" && term.ExitCode == 255 || term.Reason == "ContainerStatusUnknown")
		switch {
		case runtimeLostExit:
			exitsLost++
			t.Logf("NOTE: %s/%s ran once, and the runtime lost its exit code across its restart: %+v", pod.Name, n, term)
		case ran == 0 && startOutcomeUnknown(term):
		case !endedOnce(term):
			lostStatuses++
			t.Errorf("%s/%s: final status %+v, want Terminated exit 0 (or the StartError of an aborted start)", pod.Name, n, s)
		}
	}
	recordFigure(t, "duplicates", duplicates)
	recordFigure(t, "lost_debuggers", lost)
	recordFigure(t, "lost_statuses", lostStatuses)
	recordFigure(t, "starts_of_unknown_outcome", aborted)
	recordFigure(t, "exit_codes_lost_by_runtime", exitsLost)
	cleanupPods(t, ns)
}

// startOutcomeUnknown: the runtime could not load the container after its
// restart, which interrupted the container's start (CONTAINER_UNKNOWN,
// reported as the kubelet reports it, never started).
func startOutcomeUnknown(t *v1.ContainerStateTerminated) bool {
	return t != nil && t.Reason == "ContainerStatusUnknown" && t.StartedAt.IsZero()
}
