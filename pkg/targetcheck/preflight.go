package targetcheck

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	v1 "k8s.io/api/core/v1"
)

// ConditionType is the node condition that reports the preflight: True when
// the runtime was seen to share the target's PID namespace, False when it
// was seen not to, Unknown when the check could not run.
const ConditionType v1.NodeConditionType = "EphemeralTargetNamespace"

// Preflight keeps the result of the agent's check for those who report or
// act on it. Until Set is called it knows nothing: no condition, no metric
// series, and TARGET requests are not held back. It is safe for concurrent
// use.
type Preflight struct {
	result *prometheus.GaugeVec

	mu   sync.Mutex
	last *Result
}

// NewPreflight returns a Preflight whose metric is registered with reg
// (none when reg is nil).
func NewPreflight(reg prometheus.Registerer) *Preflight {
	return &Preflight{
		result: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "ephemeral_agent_target_preflight_result",
			Help: "The TARGET preflight's result, 1 for the current one: shared (the runtime puts a container with PID namespace mode TARGET in its target's namespace), mismatch (it does not; such debug containers are not started) or error (the check could not run).",
		}, []string{"result"}),
	}
}

// Set records the result of a check.
func (p *Preflight) Set(r Result) {
	p.mu.Lock()
	p.last = &r
	p.mu.Unlock()
	for _, o := range Outcomes {
		v := 0.0
		if o == r.Outcome {
			v = 1
		}
		p.result.WithLabelValues(string(o)).Set(v)
	}
}

// Result returns the last result, and false before any.
func (p *Preflight) Result() (Result, bool) {
	if p == nil {
		return Result{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		return Result{}, false
	}
	return *p.last, true
}

// TargetSharing returns an error, whose text is the result's message, only
// when the check proved that the runtime does not share a target's PID
// namespace. Before a result, and when the check could not run, it returns
// nil: such a request starts as it would without the preflight, as on the
// kubelet.
func (p *Preflight) TargetSharing() error {
	if r, ok := p.Result(); ok && r.Outcome == Mismatch {
		return errors.New(r.Message)
	}
	return nil
}

// NodeConditions returns the ConditionType condition for the last result,
// none before one (pkg/node's ConditionSource).
func (p *Preflight) NodeConditions() []v1.NodeCondition {
	r, ok := p.Result()
	if !ok {
		return nil
	}
	status := v1.ConditionUnknown
	switch r.Outcome {
	case Shared:
		status = v1.ConditionTrue
	case Mismatch:
		status = v1.ConditionFalse
	}
	return []v1.NodeCondition{{Type: ConditionType, Status: status, Reason: r.Reason, Message: r.Message}}
}
