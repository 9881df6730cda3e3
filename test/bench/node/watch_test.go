package node

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestWatcherSeesDebugState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pod := benchPod("ns", "p000", "node", "img", "r")
	cs := fake.NewClientset(pod)
	w, err := startWatcher(ctx, cs, RunLabel+"=r")
	if err != nil {
		t.Fatal(err)
	}
	run := w.register("ns", "p000", debugReached("d", running))
	exit := w.register("ns", "p000", debugReached("d", terminated))
	gone := w.register("ns", "p000", debugReached("x", running))
	w.forget("ns", "p000", gone)

	update := func(s v1.ContainerState) {
		t.Helper()
		p, err := cs.CoreV1().Pods("ns").Get(ctx, "p000", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.EphemeralContainerStatuses = []v1.ContainerStatus{{Name: "d", State: s}}
		if _, err := cs.CoreV1().Pods("ns").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now()
	update(runningState)
	at, err := w.wait(ctx, run)
	if err != nil || at.Before(before) {
		t.Fatalf("wait for Running = %v, %v; want a time after the update", at, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, err := w.wait(short, exit); err == nil {
		t.Fatal("Terminated seen while the container runs")
	}
	update(exited(0, "Completed"))
	if _, err := w.wait(ctx, exit); err != nil {
		t.Fatalf("wait for Terminated: %v", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.waits) != 0 {
		t.Errorf("waiters left: %v", w.waits)
	}
}
