// Package result is the JSON file the floor and node subcommands write and
// the report subcommand reads: one file per measured subject.
package result

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/ephemeral-agent/ephemeral-agent/test/bench/stats"
)

// Workload names: the keys of Result.Workloads, shared by every subject so
// that the report lines them up. The floor measures only the two Running
// ones (raw CreateContainer+StartContainer).
const (
	// OneRunning: one debug container at a time, until Running.
	OneRunning = "one_running"
	// OneTerminated: one at a time, a debug container that exits at once,
	// until Terminated.
	OneTerminated = "one_terminated"
	// ConcurrentRunning: many pods, a fixed number of requests in flight,
	// until Running.
	ConcurrentRunning = "concurrent_running"
	// ConcurrentTerminated: as ConcurrentRunning, until Terminated.
	ConcurrentTerminated = "concurrent_terminated"
	// FewPodsRunning: one at a time, until Running, with few pods on the node.
	FewPodsRunning = "few_pods_running"
	// ManyPodsRunning: one at a time, until Running, with many pods on the node.
	ManyPodsRunning = "many_pods_running"
)

// Workloads lists the workload names in report order.
var Workloads = []string{OneRunning, OneTerminated, ConcurrentRunning, ConcurrentTerminated, FewPodsRunning, ManyPodsRunning}

// Result is what one subject (ours, the kubelet, or the raw runtime) measured.
type Result struct {
	// Name is the subject: "ours", "kubelet" or "floor".
	Name string `json:"name"`
	// Image is the image of the measured containers.
	Image string `json:"image"`
	// Scale is the factor applied to the pod and request counts (1 = the
	// issue's setup).
	Scale float64 `json:"scale"`
	// Started is when the run began, RFC 3339.
	Started string `json:"started"`
	// DurationS is how long the whole run took, in seconds.
	DurationS float64 `json:"duration_s"`
	// Workloads maps a workload name to its latencies.
	Workloads map[string]Workload `json:"workloads"`
	// Idle is the node agent's cost while idle; nil for the floor.
	Idle *Idle `json:"idle,omitempty"`
}

// Workload is one workload's setup and latencies.
type Workload struct {
	stats.Summary
	// Pods is the number of pods on the node (or sandboxes) while measured.
	Pods int `json:"pods"`
	// InFlight is the number of concurrent requests.
	InFlight int `json:"in_flight"`
	// AgentCPUS is the user+system CPU time the node agent used from just
	// before the first request to just after the last one saw its state, in
	// seconds; 0 (left out) when the agent's process was not given.
	AgentCPUS float64 `json:"agent_cpu_s,omitempty"`
	// AgentCPUMsPerRequest is AgentCPUS per request, in milliseconds.
	AgentCPUMsPerRequest float64 `json:"agent_cpu_ms_per_request,omitempty"`
}

// Idle is a node agent's resource use with pods settled and nothing to do.
type Idle struct {
	// Pods is the number of pods on the node, each with an app and a
	// running debug container.
	Pods int `json:"pods"`
	// RSSMB is the mean VmRSS over the window, in MiB.
	RSSMB float64 `json:"rss_mb"`
	// RSSMaxMB is the largest VmRSS sample, in MiB.
	RSSMaxMB float64 `json:"rss_max_mb"`
	// RSSAnonMB is the mean RssAnon over the window, in MiB: VmRSS less
	// the mapped pages of files, the binary's above all, which the page
	// cache holds anyway and which grow with the binary, not the pods.
	RSSAnonMB float64 `json:"rss_anon_mb"`
	// CPUPercent is user+system CPU time over the window, in percent of one core.
	CPUPercent float64 `json:"cpu_percent"`
	// WindowS is the measurement window, in seconds.
	WindowS float64 `json:"window_s"`
}

// Write stores r as indented JSON at path.
func Write(path string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// Read loads a result written by Write.
func Read(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode result %s: %w", path, err)
	}
	return &r, nil
}

// Latency returns the named workload's summary, if r measured it.
func (r *Result) Latency(workload string) (Workload, bool) {
	if r == nil {
		return Workload{}, false
	}
	w, ok := r.Workloads[workload]
	return w, ok && w.Count > 0
}
