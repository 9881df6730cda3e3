package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
)

// stopRequestedSuffix marks, in STATE, a debug container its pod's stop
// annotation names that has not terminated yet.
const stopRequestedSuffix = " (stop requested)"

func newLsCommand(o *options) *cobra.Command {
	var (
		allNamespaces bool
		node          string
	)
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List debug containers in a namespace, all namespaces (-A) or on a node (--node)",
		Long: `List the debug (ephemeral) containers of the pods in a namespace (-n, else
the context's), in all namespaces (-A) or on a node (--node NODE, in all
namespaces unless -n is given). STATE is the container's state, or "-"
before the node reports one; "(stop requested)" marks a container the pod's
stop annotation names that has not terminated yet. AGE is since it started.`,
		Aliases: []string{"list"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns, explicit, err := o.namespace()
			if err != nil {
				return err
			}
			q := listQuery{namespace: ns, node: node}
			if allNamespaces || (node != "" && !explicit) {
				q.namespace = metav1.NamespaceAll
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			rows, err := listDebugContainers(cmd.Context(), c, q, time.Now())
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				fmt.Fprintln(o.streams.ErrOut, q.nothingFound())
				return nil
			}
			return printRows(o.streams.Out, rows, q.namespace == metav1.NamespaceAll)
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "List debug containers in all namespaces")
	cmd.Flags().StringVar(&node, "node", "", "List only the debug containers of pods on this node")
	return cmd
}

// listQuery is which pods ls looks at.
type listQuery struct {
	// namespace is "" (metav1.NamespaceAll) for all namespaces.
	namespace string
	// node, when set, keeps the pods bound to it.
	node string
}

// nothingFound says, as kubectl does, that the query matched nothing.
func (q listQuery) nothingFound() string {
	where := "in " + q.namespace + " namespace"
	if q.namespace == metav1.NamespaceAll {
		where = "in any namespace"
	}
	if q.node != "" {
		where += " on node " + q.node
	}
	return "No debug containers found " + where + "."
}

// row is one debug container as ls prints it.
type row struct {
	namespace, pod, name, image, target, state, reason, age string
}

// listDebugContainers lists the pods of q and returns a row per debug
// container, by namespace, pod, then the order the pod's spec holds them.
func listDebugContainers(ctx context.Context, c kubernetes.Interface, q listQuery, now time.Time) ([]row, error) {
	opts := metav1.ListOptions{}
	if q.node != "" {
		opts.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", q.node).String()
	}
	pods, err := c.CoreV1().Pods(q.namespace).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	slices.SortFunc(pods.Items, func(a, b v1.Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	var rows []row
	for i := range pods.Items {
		// The field selector filters on the server; this keeps a lister
		// that ignores it (a fake) to the same answer.
		if q.node != "" && pods.Items[i].Spec.NodeName != q.node {
			continue
		}
		rows = append(rows, podRows(&pods.Items[i], now)...)
	}
	return rows, nil
}

// podRows returns the rows of a pod's debug containers, each joined with
// its status.
func podRows(pod *v1.Pod, now time.Time) []row {
	stopRequested := debugapi.StopRequested(pod)
	rows := make([]row, 0, len(pod.Spec.EphemeralContainers))
	for _, ec := range pod.Spec.EphemeralContainers {
		r := row{
			namespace: pod.Namespace, pod: pod.Name, name: ec.Name, image: ec.Image,
			target: orDash(ec.TargetContainerName), state: "-", reason: "-", age: "-",
		}
		terminated := false
		if s := ephemeralStatus(pod, ec.Name); s != nil {
			var started metav1.Time
			switch st := s.State; {
			case st.Running != nil:
				r.state, started = "Running", st.Running.StartedAt
			case st.Terminated != nil:
				r.state, r.reason, started = "Terminated", orDash(st.Terminated.Reason), st.Terminated.StartedAt
				terminated = true
			case st.Waiting != nil:
				r.state, r.reason = "Waiting", orDash(st.Waiting.Reason)
			}
			if !started.IsZero() {
				r.age = duration.HumanDuration(now.Sub(started.Time))
			}
		}
		if !terminated && slices.Contains(stopRequested, ec.Name) {
			r.state += stopRequestedSuffix
		}
		rows = append(rows, r)
	}
	return rows
}

func ephemeralStatus(pod *v1.Pod, name string) *v1.ContainerStatus {
	for i := range pod.Status.EphemeralContainerStatuses {
		if pod.Status.EphemeralContainerStatuses[i].Name == name {
			return &pod.Status.EphemeralContainerStatuses[i]
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printRows writes rows as kubectl's tables look, with a NAMESPACE column
// first when they span namespaces.
func printRows(w io.Writer, rows []row, withNamespace bool) error {
	tw := printers.GetNewTabWriter(w)
	if withNamespace {
		fmt.Fprint(tw, "NAMESPACE\t")
	}
	fmt.Fprintln(tw, "POD\tNAME\tIMAGE\tTARGET\tSTATE\tREASON\tAGE")
	for _, r := range rows {
		if withNamespace {
			fmt.Fprint(tw, r.namespace+"\t")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.pod, r.name, r.image, r.target, r.state, r.reason, r.age)
	}
	return tw.Flush()
}
