// Package report prints a benchmark's figures: one table for people, then,
// as the last line, one JSON object for scripts.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ephemeral-agent/ephemeral-agent/test/bench/result"
	"github.com/ephemeral-agent/ephemeral-agent/test/bench/targets"
)

// Summary is the JSON object printed last.
type Summary struct {
	Ours       *result.Result   `json:"ours"`
	Kubelet    *result.Result   `json:"kubelet"`
	Floor      *result.Result   `json:"floor"`
	Ratios     targets.Ratios   `json:"ratios"`
	TargetsMet bool             `json:"targets_met"`
	Targets    []targets.Target `json:"targets"`
}

// Build evaluates the inputs; missing results stay nil (JSON null).
func Build(in targets.Inputs) Summary {
	ts, met := targets.Check(in)
	return Summary{
		Ours: in.Ours, Kubelet: in.Kubelet, Floor: in.Floor,
		Ratios:     targets.ComputeRatios(in),
		TargetsMet: met,
		Targets:    ts,
	}
}

// labels describe each workload in the table.
var labels = map[string]string{
	result.OneRunning:           "one at a time -> Running",
	result.OneTerminated:        "one at a time -> Terminated",
	result.ConcurrentRunning:    "N at a time -> Running",
	result.ConcurrentTerminated: "N at a time -> Terminated",
	result.FewPodsRunning:       "one at a time -> Running, few pods",
	result.ManyPodsRunning:      "one at a time -> Running, many pods",
}

// Print writes the table, the targets, and the JSON summary as the last line.
func Print(w io.Writer, s Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tpods\tin flight\tours p50/p99 ms\tkubelet p50/p99 ms\tfloor p50/p99 ms")
	for _, name := range result.Workloads {
		pods, inFlight := "-", "-"
		for _, r := range []*result.Result{s.Ours, s.Kubelet, s.Floor} {
			if l, ok := r.Latency(name); ok {
				pods, inFlight = fmt.Sprint(l.Pods), fmt.Sprint(l.InFlight)
				break
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", labels[name], pods, inFlight,
			cell(s.Ours, name), cell(s.Kubelet, name), cell(s.Floor, name))
	}
	fmt.Fprintf(tw, "idle RSS MiB\t%s\t\t%s\t%s\t-\n", idlePods(s), idleCell(s.Ours, true), idleCell(s.Kubelet, true))
	fmt.Fprintf(tw, "idle RSS anon MiB\t%s\t\t%s\t%s\t-\n", idlePods(s), anonCell(s.Ours), anonCell(s.Kubelet))
	fmt.Fprintf(tw, "idle CPU %% of one core\t%s\t\t%s\t%s\t-\n", idlePods(s), idleCell(s.Ours, false), idleCell(s.Kubelet, false))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print table: %w", err)
	}
	fmt.Fprintln(w)
	if err := printCPU(w, s); err != nil {
		return err
	}
	if note := scaleNote(s); note != "" {
		fmt.Fprintln(w, note)
	}
	for _, t := range s.Targets {
		verdict := "MISSED"
		switch {
		case !t.Measured:
			verdict = "not measured"
		case t.Met:
			verdict = "met"
		}
		if t.Measured {
			fmt.Fprintf(w, "%-13s %s: %g %s (limit %g)\n", verdict, t.Name, t.Value, t.Unit, t.Limit)
		} else {
			fmt.Fprintf(w, "%-13s %s\n", verdict, t.Name)
		}
	}
	// Encode ends the line; "<=" stays readable in target names.
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	return nil
}

func cell(r *result.Result, workload string) string {
	l, ok := r.Latency(workload)
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%g / %g", l.P50Ms, l.P99Ms)
}

// printCPU writes, when a result has them, the node agents' CPU time per
// workload as a second table; results without them (no --pid, or written
// before the figures existed) show "-".
func printCPU(w io.Writer, s Summary) error {
	have := false
	for _, r := range []*result.Result{s.Ours, s.Kubelet} {
		for _, name := range result.Workloads {
			if l, ok := r.Latency(name); ok && l.AgentCPUS > 0 {
				have = true
			}
		}
	}
	if !have {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "agent CPU\tours ms/request (total s)\tkubelet ms/request (total s)")
	for _, name := range result.Workloads {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", labels[name], cpuCell(s.Ours, name), cpuCell(s.Kubelet, name))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print CPU table: %w", err)
	}
	fmt.Fprintln(w)
	return nil
}

func cpuCell(r *result.Result, workload string) string {
	l, ok := r.Latency(workload)
	if !ok || l.AgentCPUS == 0 {
		return "-"
	}
	return fmt.Sprintf("%g (%g s)", l.AgentCPUMsPerRequest, l.AgentCPUS)
}

func idleCell(r *result.Result, rss bool) string {
	if r == nil || r.Idle == nil {
		return "-"
	}
	if rss {
		return fmt.Sprintf("%g", r.Idle.RSSMB)
	}
	return fmt.Sprintf("%g", r.Idle.CPUPercent)
}

func anonCell(r *result.Result) string {
	if r == nil || r.Idle == nil {
		return "-"
	}
	return fmt.Sprintf("%g", r.Idle.RSSAnonMB)
}

func idlePods(s Summary) string {
	var p []string
	for _, r := range []*result.Result{s.Ours, s.Kubelet} {
		if r != nil && r.Idle != nil {
			p = append(p, fmt.Sprint(r.Idle.Pods))
		}
	}
	if len(p) == 0 {
		return "-"
	}
	return p[0]
}

// scaleNote warns when the results were taken at different scales: their
// figures then compare different loads.
func scaleNote(s Summary) string {
	var parts []string
	seen := map[float64]bool{}
	for _, r := range []*result.Result{s.Ours, s.Kubelet, s.Floor} {
		if r != nil {
			parts = append(parts, fmt.Sprintf("%s %g", r.Name, r.Scale))
			seen[r.Scale] = true
		}
	}
	if len(seen) < 2 {
		return ""
	}
	return "note: results taken at different scales (" + strings.Join(parts, ", ") + "): their figures compare different loads"
}
