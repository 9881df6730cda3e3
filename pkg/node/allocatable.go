package node

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The eviction signals of the kubelet that the agent knows. Only
// memory.available and nodefs.available reduce allocatable; the others are
// accepted so that a kubelet's --eviction-hard can be carried over as is.
const (
	SignalMemoryAvailable     = "memory.available"
	SignalNodeFsAvailable     = "nodefs.available"
	SignalNodeFsInodesFree    = "nodefs.inodesFree"
	SignalImageFsAvailable    = "imagefs.available"
	SignalImageFsInodesFree   = "imagefs.inodesFree"
	SignalContainerFsAvail    = "containerfs.available"
	SignalContainerFsInodes   = "containerfs.inodesFree"
	SignalPIDAvailable        = "pid.available"
	SignalAllocatableMemAvail = "allocatableMemory.available"
)

var knownSignals = map[string]bool{
	SignalMemoryAvailable: true, SignalNodeFsAvailable: true, SignalNodeFsInodesFree: true,
	SignalImageFsAvailable: true, SignalImageFsInodesFree: true, SignalContainerFsAvail: true,
	SignalContainerFsInodes: true, SignalPIDAvailable: true, SignalAllocatableMemAvail: true,
}

// DefaultEvictionHard is the kubelet's --eviction-hard default on Linux.
const DefaultEvictionHard = "memory.available<100Mi,nodefs.available<10%,imagefs.available<15%,nodefs.inodesFree<5%"

// Threshold is one hard eviction threshold: its signal must not fall below
// Quantity, or below Percentage of the capacity when Quantity is nil.
type Threshold struct {
	Signal     string
	Quantity   *resource.Quantity
	Percentage float64 // a fraction, 0.1 for 10%
}

// ParseThresholds parses an --eviction-hard value in the kubelet's format,
// signal<quantity or signal<percentage% separated by commas. An empty value
// means no thresholds. As the kubelet (without mergeDefaultEvictionSettings),
// a value replaces the defaults entirely.
func ParseThresholds(s string) ([]Threshold, error) {
	var out []Threshold
	seen := map[string]bool{}
	var errs []error
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		signal, value, ok := strings.Cut(item, "<")
		signal, value = strings.TrimSpace(signal), strings.TrimSpace(value)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%q: want signal<quantity, the only operator of hard thresholds is <", item))
			continue
		case !knownSignals[signal]:
			errs = append(errs, fmt.Errorf("%q: unknown eviction signal %q", item, signal))
			continue
		case seen[signal]:
			errs = append(errs, fmt.Errorf("%q: signal %s given twice", item, signal))
			continue
		}
		seen[signal] = true
		t := Threshold{Signal: signal}
		if p, isPct := strings.CutSuffix(value, "%"); isPct {
			f, err := strconv.ParseFloat(p, 64)
			if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
				errs = append(errs, fmt.Errorf("%q: percentage %q must be between 0%% and 100%%", item, value))
				continue
			}
			t.Percentage = f / 100
		} else {
			q, err := resource.ParseQuantity(value)
			if err != nil {
				errs = append(errs, fmt.Errorf("%q: %w", item, err))
				continue
			}
			if q.Sign() < 0 {
				errs = append(errs, fmt.Errorf("%q: quantity must not be negative", item))
				continue
			}
			t.Quantity = &q
		}
		out = append(out, t)
	}
	return out, errors.Join(errs...)
}

// value returns the threshold's value in the signal's unit for capacity.
func (t Threshold) value(capacity resource.Quantity) int64 {
	if t.Quantity != nil {
		return t.Quantity.Value()
	}
	return int64(t.Percentage * float64(capacity.Value()))
}

// findThreshold returns the threshold of signal, or nil.
func findThreshold(ts []Threshold, signal string) *Threshold {
	for i := range ts {
		if ts[i].Signal == signal {
			return &ts[i]
		}
	}
	return nil
}

// evictionResource says which capacity a signal's threshold is kept from.
var evictionResource = map[string]v1.ResourceName{
	SignalMemoryAvailable: v1.ResourceMemory,
	SignalNodeFsAvailable: v1.ResourceEphemeralStorage,
}

// Allocatable returns capacity minus the reservations and the hard eviction
// thresholds, as the kubelet's node allocatable: the thresholds of
// memory.available and nodefs.available come off memory and
// ephemeral-storage. No resource goes below zero.
func Allocatable(capacity, kubeReserved, systemReserved v1.ResourceList, evictionHard []Threshold) v1.ResourceList {
	out := capacity.DeepCopy()
	for name, q := range out {
		for _, r := range []v1.ResourceList{kubeReserved, systemReserved} {
			if v, ok := r[name]; ok {
				q.Sub(v)
			}
		}
		for signal, res := range evictionResource {
			if res != name {
				continue
			}
			if t := findThreshold(evictionHard, signal); t != nil {
				q.Sub(*resource.NewQuantity(t.value(capacity[name]), q.Format))
			}
		}
		if q.Sign() < 0 {
			q = *resource.NewQuantity(0, q.Format)
		}
		out[name] = q
	}
	return out
}
