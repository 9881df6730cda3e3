// Command ephemeral-bench measures how fast a node agent starts debug
// (ephemeral) containers and what it costs while idle, against the raw CRI
// runtime and the upstream kubelet (issue 13, make bench):
//
//	ephemeral-bench floor  --cri-endpoint unix:///SOCK --image IMG --out floor.json
//	ephemeral-bench node   --kubeconfig K --node NODE --pid PID --name ours|kubelet --out F.json [--image IMG]
//	ephemeral-bench report --ours ours.json --kubelet kubelet.json --floor floor.json
//
// floor and node write JSON; report prints a table and, as its last line,
// one JSON object with the figures, ratios and targets. This file only parses
// flags and wires packages; the work is in test/bench/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"

	"github.com/ephemeral-agent/ephemeral-agent/test/bench/floor"
	"github.com/ephemeral-agent/ephemeral-agent/test/bench/node"
	"github.com/ephemeral-agent/ephemeral-agent/test/bench/report"
	"github.com/ephemeral-agent/ephemeral-agent/test/bench/result"
	"github.com/ephemeral-agent/ephemeral-agent/test/bench/targets"
)

const usage = `usage: ephemeral-bench floor|node|report [flags]   (ephemeral-bench COMMAND --help for flags)`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	cmds := map[string]func(context.Context, []string) error{"floor": runFloor, "node": runNode, "report": runReport}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	// SIGINT/SIGTERM cancel the run; each command still removes what it created.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background())
	err := cmd(ctx, os.Args[2:])
	klog.Flush()
	switch {
	case errors.Is(err, pflag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		fmt.Fprintf(os.Stderr, "ephemeral-bench %s: interrupted (%v)\n", os.Args[1], err)
		os.Exit(1)
	case err != nil:
		fmt.Fprintf(os.Stderr, "ephemeral-bench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// newFlags is a subcommand's flag set with klog's flags (-v and friends).
func newFlags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("ephemeral-bench "+name, pflag.ContinueOnError)
	gfs := flag.NewFlagSet(name, flag.ContinueOnError)
	klog.InitFlags(gfs)
	fs.AddGoFlagSet(gfs)
	return fs
}

func parse(fs *pflag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		fmt.Fprintln(os.Stderr, err)
		return errUsage
	}
	for _, r := range required {
		if f := fs.Lookup(r); f != nil && f.Value.String() == f.DefValue && !fs.Changed(r) {
			fmt.Fprintf(os.Stderr, "--%s is required\n", r)
			return errUsage
		}
	}
	return nil
}

// runID names a run's objects; the time keeps concurrent runs apart.
func runID() string { return fmt.Sprintf("eb-%x", time.Now().Unix()) }

func runFloor(ctx context.Context, args []string) error {
	fs := newFlags("floor")
	endpoint := fs.String("cri-endpoint", "", "The CRI runtime's endpoint, e.g. unix:///run/containerd/containerd.sock. No node agent may use it meanwhile.")
	image := fs.String("image", "localhost/busybox:test", "The image of the measured containers, present in the runtime.")
	out := fs.String("out", "", "Where to write the JSON result.")
	cgroupParent := fs.String("cgroup-parent", "", "The sandboxes' cgroup parent (empty: the runtime's default).")
	scale := fs.Float64("scale", 1, "Factor on the container counts (1: 40 one at a time, 100 with 20 in flight); below 1 for quick trials.")
	if err := parse(fs, args, "cri-endpoint", "out"); err != nil {
		return err
	}
	c := node.ScaledCounts(*scale)
	rt, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(*endpoint).WithConnectionTimeout(10 * time.Second).Build(ctx)
	if err != nil {
		return fmt.Errorf("connect to the CRI runtime: %w", err)
	}
	img, err := remote.NewRemoteImageServiceBuilder().WithEndpoint(*endpoint).WithConnectionTimeout(10 * time.Second).Build(ctx)
	if err != nil {
		return fmt.Errorf("connect to the CRI image service: %w", err)
	}
	res, err := floor.Run(ctx, rt, img, floor.Config{
		Image: *image, CgroupParent: *cgroupParent, RunID: runID(),
		Sequential: c.Sequential, Concurrent: c.Concurrent, InFlight: c.InFlight,
	})
	if err != nil {
		return err
	}
	res.Scale = *scale
	return result.Write(*out, res)
}

func runNode(ctx context.Context, args []string) error {
	fs := newFlags("node")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "An admin kubeconfig of the cluster.")
	nodeName := fs.String("node", "", "The node whose agent is measured.")
	pid := fs.Int("pid", 0, "The node agent's process id, for its CPU time per workload and its idle RSS and CPU (0: skip those figures).")
	name := fs.String("name", "", "Who is measured: ours or kubelet (the result's name).")
	out := fs.String("out", "", "Where to write the JSON result.")
	image := fs.String("image", "localhost/busybox:test", "The image of the app and debug containers, present on the node.")
	scale := fs.Float64("scale", 1, "Factor on the pod and request counts (1: issue 13's table); below 1 for quick trials.")
	timeout := fs.Duration("timeout", 2*time.Minute, "Longest wait for one pod or debug container to reach its state.")
	settle := fs.Duration("idle-settle", 20*time.Second, "Wait before the idle measurement.")
	window := fs.Duration("idle-window", 60*time.Second, "Length of the idle measurement.")
	qps := fs.Float32("kube-api-qps", 200, "The bench's API client QPS: high, so that it never waits on its own rate limiter.")
	burst := fs.Int("kube-api-burst", 400, "The bench's API client burst.")
	if err := parse(fs, args, "node", "name", "out"); err != nil {
		return err
	}
	if *name != "ours" && *name != "kubelet" {
		fmt.Fprintf(os.Stderr, "--name must be ours or kubelet, not %q\n", *name)
		return errUsage
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = *qps, *burst
	cfg.UserAgent = "ephemeral-bench"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("API client: %w", err)
	}
	res, err := node.Run(ctx, cs, node.Config{
		Name: *name, Node: *nodeName, PID: *pid, Image: *image, Counts: node.ScaledCounts(*scale),
		Timeout: *timeout, IdleSettle: *settle, IdleWindow: *window, RunID: runID(),
	})
	if err != nil {
		return err
	}
	res.Scale = *scale
	return result.Write(*out, res)
}

func runReport(ctx context.Context, args []string) error {
	fs := newFlags("report")
	ours := fs.String("ours", "", "The node result of our agent.")
	kubelet := fs.String("kubelet", "", "The node result of the kubelet.")
	fl := fs.String("floor", "", "The floor result.")
	if err := parse(fs, args); err != nil {
		return err
	}
	// A missing or unreadable file means those figures were not measured
	// (e.g. a partial run): the report says so rather than failing.
	load := func(path string) *result.Result {
		if path == "" {
			return nil
		}
		r, err := result.Read(path)
		if err != nil {
			klog.FromContext(ctx).Info("Result not available, its targets count as not measured", "file", path, "err", err)
			return nil
		}
		return r
	}
	return report.Print(os.Stdout, report.Build(targets.Inputs{Ours: load(*ours), Kubelet: load(*kubelet), Floor: load(*fl)}))
}
