package node

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RuntimeHealth is what one CRI Status call told about the runtime: either
// the response or the error that prevented one.
type RuntimeHealth struct {
	Status *runtimeapi.RuntimeStatus
	Err    error
}

// problems lists, in the kubelet's words, why the node cannot run pods; an
// empty list means the runtime and its network are ready.
func (h RuntimeHealth) problems() []string {
	if h.Err != nil {
		return []string{fmt.Sprintf("container runtime is down: %v", h.Err)}
	}
	if h.Status == nil {
		return []string{"container runtime status check may not have completed yet"}
	}
	var out []string
	for _, want := range []struct{ typ, what string }{
		{runtimeapi.RuntimeReady, "container runtime not ready"},
		{runtimeapi.NetworkReady, "container runtime network not ready"},
	} {
		c := findRuntimeCondition(h.Status, want.typ)
		switch {
		case c == nil:
			out = append(out, fmt.Sprintf("%s: %s is not reported", want.what, want.typ))
		case !c.Status:
			out = append(out, fmt.Sprintf("%s: %s=false reason:%s message:%s", want.what, want.typ, c.Reason, c.Message))
		}
	}
	return out
}

func findRuntimeCondition(s *runtimeapi.RuntimeStatus, typ string) *runtimeapi.RuntimeCondition {
	for _, c := range s.GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

// RuntimeError returns why the runtime cannot run containers at all (it
// is unreachable, or reports RuntimeReady false), or nil: the "runtime"
// check of the agent's /healthz. Unlike Ready, it leaves the network out
// (a missing CNI config makes the node NotReady, not the agent broken),
// and before the first Status call answered it says nothing.
func (h RuntimeHealth) RuntimeError() error {
	if h.Err != nil {
		return fmt.Errorf("container runtime is down: %w", h.Err)
	}
	if h.Status == nil {
		return nil
	}
	c := findRuntimeCondition(h.Status, runtimeapi.RuntimeReady)
	switch {
	case c == nil:
		return fmt.Errorf("container runtime not ready: %s is not reported", runtimeapi.RuntimeReady)
	case !c.Status:
		return fmt.Errorf("container runtime not ready: %s=false reason:%s message:%s", runtimeapi.RuntimeReady, c.Reason, c.Message)
	}
	return nil
}

// Ready reports whether the runtime can run pods.
func (h RuntimeHealth) Ready() bool { return len(h.problems()) == 0 }

// desiredConditions returns the node conditions for the observed runtime
// health and resource pressure, with no timestamps: mergeConditions adds
// those. Reasons and messages are the kubelet's.
func desiredConditions(h RuntimeHealth, p Pressure) []v1.NodeCondition {
	ready := v1.NodeCondition{
		Type:    v1.NodeReady,
		Status:  v1.ConditionTrue,
		Reason:  "KubeletReady",
		Message: "kubelet is posting ready status",
	}
	if prob := h.problems(); len(prob) > 0 {
		ready.Status = v1.ConditionFalse
		ready.Reason = "KubeletNotReady"
		ready.Message = strings.Join(prob, ", ")
	}
	return []v1.NodeCondition{
		pressureCondition(v1.NodeMemoryPressure, p.Memory,
			"KubeletHasInsufficientMemory", "kubelet has insufficient memory available",
			"KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		pressureCondition(v1.NodeDiskPressure, p.Disk,
			"KubeletHasDiskPressure", "kubelet has disk pressure",
			"KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		pressureCondition(v1.NodePIDPressure, p.PID,
			"KubeletHasInsufficientPID", "kubelet has insufficient PID available",
			"KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		ready,
	}
}

func pressureCondition(typ v1.NodeConditionType, on bool, onReason, onMessage, offReason, offMessage string) v1.NodeCondition {
	if on {
		return v1.NodeCondition{Type: typ, Status: v1.ConditionTrue, Reason: onReason, Message: onMessage}
	}
	return v1.NodeCondition{Type: typ, Status: v1.ConditionFalse, Reason: offReason, Message: offMessage}
}

// mergeConditions returns the conditions to report at now: want's contents,
// LastHeartbeatTime now, and LastTransitionTime kept from old unless the
// status flipped. Conditions of other types in old (set by other components)
// are kept as they are.
func mergeConditions(old []v1.NodeCondition, want []v1.NodeCondition, now metav1.Time) []v1.NodeCondition {
	out := make([]v1.NodeCondition, 0, len(old)+len(want))
	wanted := make(map[v1.NodeConditionType]bool, len(want))
	for _, w := range want {
		wanted[w.Type] = true
		w.LastHeartbeatTime = now
		w.LastTransitionTime = now
		if o := findCondition(old, w.Type); o != nil && o.Status == w.Status {
			w.LastTransitionTime = o.LastTransitionTime
		}
		out = append(out, w)
	}
	for _, o := range old {
		if !wanted[o.Type] {
			out = append(out, o)
		}
	}
	return out
}

// conditionsChanged reports whether want says something that reported does
// not, ignoring timestamps: only then is a status patch worth sending before
// the report interval.
func conditionsChanged(reported, want []v1.NodeCondition) bool {
	for _, w := range want {
		r := findCondition(reported, w.Type)
		if r == nil || r.Status != w.Status || r.Reason != w.Reason || r.Message != w.Message {
			return true
		}
	}
	return false
}

func findCondition(cs []v1.NodeCondition, typ v1.NodeConditionType) *v1.NodeCondition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}
