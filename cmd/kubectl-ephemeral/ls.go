package main

import (
	"cmp"
	"context"
	"encoding/json"
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
	"sigs.k8s.io/yaml"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/debugapi"
)

// stopRequestedSuffix marks, in STATE, a debug container its pod's stop
// annotation names that has not terminated yet.
const stopRequestedSuffix = " (stop requested)"

func newLsCommand(o *options) *cobra.Command {
	var (
		allNamespaces bool
		node          string
		output        string
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
			if output != "" && output != "json" && output != "yaml" {
				return fmt.Errorf("unknown output format %q: json or yaml, or none for the table", output)
			}
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
			dcs, err := listDebugContainers(cmd.Context(), c, q)
			if err != nil {
				return err
			}
			switch output {
			case "json", "yaml":
				return printList(o.streams.Out, output, dcs)
			}
			if len(dcs) == 0 {
				fmt.Fprintln(o.streams.ErrOut, q.nothingFound())
				return nil
			}
			return printTable(o.streams.Out, dcs, q.namespace == metav1.NamespaceAll, time.Now())
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "List debug containers in all namespaces")
	cmd.Flags().StringVar(&node, "node", "", "List only the debug containers of pods on this node")
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json or yaml (an object with the list in items); the table when unset")
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

// debugContainer is one debug container and its state, as ls -o json and
// -o yaml print it.
type debugContainer struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Name      string `json:"name"`
	Image     string `json:"image"`
	Target    string `json:"target,omitempty"`
	// State is Waiting, Running or Terminated; empty until the node
	// reports a status.
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
	// ExitCode is a terminated container's.
	ExitCode *int32 `json:"exitCode,omitempty"`
	// StartedAt is when it started; nil before it did.
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// StopRequested: the pod's stop annotation names it.
	StopRequested bool `json:"stopRequested,omitempty"`
}

// debugContainerList is what ls -o json and -o yaml print.
type debugContainerList struct {
	Items []debugContainer `json:"items"`
}

// row is one debug container as the ls table prints it.
type row struct {
	namespace, pod, name, image, target, state, reason, age string
}

// listDebugContainers lists the pods of q and returns their debug
// containers, by namespace, pod, then the order the pod's spec holds them.
func listDebugContainers(ctx context.Context, c kubernetes.Interface, q listQuery) ([]debugContainer, error) {
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
	var out []debugContainer
	for i := range pods.Items {
		// The field selector filters on the server; this keeps a lister
		// that ignores it (a fake) to the same answer.
		if q.node != "" && pods.Items[i].Spec.NodeName != q.node {
			continue
		}
		out = append(out, podDebugContainers(&pods.Items[i])...)
	}
	return out, nil
}

// podDebugContainers returns a pod's debug containers, each joined with its
// status.
func podDebugContainers(pod *v1.Pod) []debugContainer {
	stopRequested := debugapi.StopRequested(pod)
	out := make([]debugContainer, 0, len(pod.Spec.EphemeralContainers))
	for _, ec := range pod.Spec.EphemeralContainers {
		d := debugContainer{
			Namespace: pod.Namespace, Pod: pod.Name, Name: ec.Name, Image: ec.Image, Target: ec.TargetContainerName,
			StopRequested: slices.Contains(stopRequested, ec.Name),
		}
		if s := ephemeralStatus(pod, ec.Name); s != nil {
			var started metav1.Time
			switch st := s.State; {
			case st.Running != nil:
				d.State, started = "Running", st.Running.StartedAt
			case st.Terminated != nil:
				d.State, d.Reason, started = "Terminated", st.Terminated.Reason, st.Terminated.StartedAt
				d.ExitCode = &st.Terminated.ExitCode
			case st.Waiting != nil:
				d.State, d.Reason = "Waiting", st.Waiting.Reason
			}
			if !started.IsZero() {
				d.StartedAt = &started
			}
		}
		out = append(out, d)
	}
	return out
}

// row returns the table row of d at now. A stop request is shown while the
// container has not terminated: after, it is done.
func (d debugContainer) row(now time.Time) row {
	r := row{
		namespace: d.Namespace, pod: d.Pod, name: d.Name, image: d.Image,
		target: orDash(d.Target), state: orDash(d.State), reason: orDash(d.Reason), age: "-",
	}
	if d.StartedAt != nil {
		r.age = duration.HumanDuration(now.Sub(d.StartedAt.Time))
	}
	if d.StopRequested && d.State != "Terminated" {
		r.state += stopRequestedSuffix
	}
	return r
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

// printTable writes the debug containers as kubectl's tables look, with a
// NAMESPACE column first when they span namespaces.
func printTable(w io.Writer, dcs []debugContainer, withNamespace bool, now time.Time) error {
	rows := make([]row, len(dcs))
	for i, d := range dcs {
		rows[i] = d.row(now)
	}
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

// printList writes the debug containers as JSON or YAML.
func printList(w io.Writer, format string, dcs []debugContainer) error {
	list := debugContainerList{Items: dcs}
	if list.Items == nil {
		list.Items = []debugContainer{}
	}
	var (
		b   []byte
		err error
	)
	if format == "yaml" {
		b, err = yaml.Marshal(list)
	} else {
		b, err = json.MarshalIndent(list, "", "    ")
		b = append(b, '\n')
	}
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
