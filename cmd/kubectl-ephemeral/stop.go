package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
)

func newStopCommand(o *options) *cobra.Command {
	var (
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "stop POD NAME [NAME...]",
		Short: "Ask the node agent to stop debug containers of a pod",
		Long: `Add debug (ephemeral) containers of a pod to its stop annotation
(` + debugapi.StopAnnotation + `); the agent on the pod's node stops
them, and a stopped debug container never starts again. It needs get and
patch on pods, and the API server's audit log records who asked. It returns
at once unless --wait: kubectl ephemeral ls shows when they have terminated.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, _, err := o.namespace()
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			res, err := requestStop(cmd.Context(), c, ns, args[0], args[1:])
			if err != nil {
				return err
			}
			for _, name := range args[1:] {
				what := "stop requested"
				if slices.Contains(res.terminated, name) {
					what = "already terminated"
				}
				fmt.Fprintf(o.streams.Out, "debug container %s of pod %s/%s: %s\n", name, ns, args[0], what)
			}
			if !wait {
				return nil
			}
			running := slices.DeleteFunc(slices.Clone(args[1:]), func(n string) bool { return slices.Contains(res.terminated, n) })
			return waitTerminated(cmd.Context(), c, ns, args[0], running, timeout, func(name string, s *v1.ContainerStateTerminated) {
				fmt.Fprintf(o.streams.Out, "debug container %s of pod %s/%s: terminated (%s)\n", name, ns, args[0], orDash(s.Reason))
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "Wait until the debug containers have terminated")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "How long --wait waits")
	return cmd
}

// waitPollInterval is how often --wait reads the pod.
const waitPollInterval = time.Second

// waitTerminated reads the pod until each of names has a Terminated state,
// calling done once for each as it is seen, or until timeout.
func waitTerminated(ctx context.Context, c kubernetes.Interface, ns, pod string, names []string, timeout time.Duration, done func(string, *v1.ContainerStateTerminated)) error {
	pending := slices.Clone(names)
	err := wait.PollUntilContextTimeout(ctx, waitPollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := c.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("get pod %s/%s: %w", ns, pod, err)
		}
		pending = slices.DeleteFunc(pending, func(name string) bool {
			s := ephemeralStatus(p, name)
			if s == nil || s.State.Terminated == nil {
				return false
			}
			done(name, s.State.Terminated)
			return true
		})
		return len(pending) == 0, nil
	})
	if err != nil && len(pending) > 0 && wait.Interrupted(err) {
		return fmt.Errorf("debug containers of pod %s/%s still not terminated after %s: %s", ns, pod, timeout, strings.Join(pending, ", "))
	}
	return err
}

// stopResult is what requestStop did.
type stopResult struct {
	// terminated are the names left out of the annotation because their
	// containers have terminated already.
	terminated []string
	// patched is whether the annotation changed.
	patched bool
}

// requestStop adds names to the pod's stop annotation. It reads the pod,
// decides (stopAnnotation), and patches with the resourceVersion it read
// as a precondition, so that a concurrent change of the annotation is
// never overwritten: a conflict reads the pod again.
func requestStop(ctx context.Context, c kubernetes.Interface, ns, pod string, names []string) (stopResult, error) {
	var res stopResult
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := c.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get pod %s/%s: %w", ns, pod, err)
		}
		value, terminated, err := stopAnnotation(p, names)
		if err != nil {
			return err
		}
		res = stopResult{terminated: terminated}
		if value == p.Annotations[debugapi.StopAnnotation] {
			return nil
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": p.ResourceVersion,
			"annotations":     map[string]string{debugapi.StopAnnotation: value},
		}})
		if err != nil {
			return err
		}
		// The API server turns the resourceVersion in a merge patch into a
		// precondition: Conflict when the pod changed since the read.
		if _, err := c.CoreV1().Pods(ns).Patch(ctx, pod, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return err
		}
		res.patched = true
		return nil
	})
	if err != nil {
		return stopResult{}, fmt.Errorf("request stop of debug containers of pod %s/%s: %w", ns, pod, err)
	}
	return res, nil
}

// stopAnnotation returns the pod's stop annotation with names added, and
// the names left out because their containers have terminated. A name that
// is not one of the pod's debug containers is an error naming those there
// are.
func stopAnnotation(pod *v1.Pod, names []string) (value string, terminated []string, err error) {
	debug := make([]string, 0, len(pod.Spec.EphemeralContainers))
	for _, ec := range pod.Spec.EphemeralContainers {
		debug = append(debug, ec.Name)
	}
	var unknown []string
	for _, n := range names {
		if !slices.Contains(debug, n) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		there := "it has none"
		if len(debug) > 0 {
			there = "its debug containers: " + strings.Join(debug, ", ")
		}
		return "", nil, fmt.Errorf("pod %s/%s has no debug container %s (%s)", pod.Namespace, pod.Name, strings.Join(unknown, ", "), there)
	}
	value = pod.Annotations[debugapi.StopAnnotation]
	for _, n := range names {
		if s := ephemeralStatus(pod, n); s != nil && s.State.Terminated != nil {
			terminated = append(terminated, n)
			continue
		}
		value = debugapi.WithName(value, n)
	}
	return value, terminated, nil
}
