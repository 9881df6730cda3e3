package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugpolicy"
)

// debugPolicyPath is the agent's route (server.DebugPolicyPath), kept here
// as a string so that the plugin does not link the agent's server.
const debugPolicyPath = "debugpolicy"

func newPolicyCommand(o *options) *cobra.Command {
	var pod string
	cmd := &cobra.Command{
		Use:   "policy [NODE]",
		Short: "Print the debug policy a node's agent enforces",
		Long: `Print the debug policy in force on a node, as its agent serves it
(GET /api/v1/nodes/NODE/proxy/debugpolicy: it needs get on nodes/proxy).
NODE defaults to the node of --pod, else to the cluster's only node. A node
without a policy allows every debug container, as the kubelet does.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			var node string
			switch {
			case len(args) == 1 && pod != "":
				return fmt.Errorf("give NODE or --pod, not both")
			case len(args) == 1:
				node = args[0]
			case pod != "":
				ns, _, err := o.namespace()
				if err != nil {
					return err
				}
				if node, err = podNode(cmd.Context(), c, ns, pod); err != nil {
					return err
				}
			default:
				if node, err = onlyNode(cmd.Context(), c); err != nil {
					return err
				}
			}
			snap, err := nodePolicy(cmd.Context(), c, node)
			if err != nil {
				return err
			}
			return printPolicy(o.streams.Out, o.streams.ErrOut, node, snap)
		},
	}
	cmd.Flags().StringVar(&pod, "pod", "", "Print the policy of this pod's node (in -n's namespace)")
	return cmd
}

// podNode returns the node a pod is bound to.
func podNode(ctx context.Context, c kubernetes.Interface, ns, pod string) (string, error) {
	p, err := c.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get pod %s/%s: %w", ns, pod, err)
	}
	if p.Spec.NodeName == "" {
		return "", fmt.Errorf("pod %s/%s is not bound to a node yet", ns, pod)
	}
	return p.Spec.NodeName, nil
}

// onlyNode returns the cluster's node when it has exactly one.
func onlyNode(ctx context.Context, c kubernetes.Interface) (string, error) {
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list nodes: %w", err)
	}
	switch len(nodes.Items) {
	case 1:
		return nodes.Items[0].Name, nil
	case 0:
		return "", fmt.Errorf("the cluster has no nodes")
	}
	names := make([]string, len(nodes.Items))
	for i := range nodes.Items {
		names[i] = nodes.Items[i].Name
	}
	return "", fmt.Errorf("the cluster has %d nodes (%s): name one, or a pod with --pod", len(names), strings.Join(names, ", "))
}

// nodePolicy asks the node's agent for its debug policy through the API
// server's node proxy.
func nodePolicy(ctx context.Context, c kubernetes.Interface, node string) (debugpolicy.Snapshot, error) {
	var snap debugpolicy.Snapshot
	body, err := c.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy", debugPolicyPath).DoRaw(ctx)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return snap, fmt.Errorf("node %s: not found, or its agent serves no /%s (not an ephemeral-agent, or an older one): %w", node, debugPolicyPath, err)
		}
		return snap, fmt.Errorf("get the debug policy of node %s: %w", node, err)
	}
	if err := json.Unmarshal(body, &snap); err != nil {
		return snap, fmt.Errorf("decode the debug policy of node %s: %w", node, err)
	}
	return snap, nil
}

// policyView is what policy prints: the snapshot under the node's name.
type policyView struct {
	Node                 string `json:"node"`
	debugpolicy.Snapshot `json:",inline"`
}

// printPolicy writes the snapshot as YAML, or a line saying the node has
// no policy. A policy file the agent refused on reload is also told on
// errOut, since the policy in force is then not the file on disk.
func printPolicy(out, errOut io.Writer, node string, snap debugpolicy.Snapshot) error {
	if snap.Policy == nil {
		_, err := fmt.Fprintf(out, "node %s: no policy (--debug-policy-config unset): every debug container is allowed\n", node)
		return err
	}
	if snap.LastError != "" {
		fmt.Fprintf(errOut, "Warning: node %s refused the policy file now at %s (%s); the policy below, loaded %s, stays in force\n",
			node, snap.Path, snap.LastError, snap.LoadedAt.Format("2006-01-02T15:04:05Z07:00"))
	}
	b, err := yaml.Marshal(policyView{Node: node, Snapshot: snap})
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}
