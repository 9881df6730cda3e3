// Package stats builds the kubelet's Summary API (/stats/summary, types of
// k8s.io/kubelet/pkg/apis/stats/v1alpha1) and the resource metrics
// (/metrics/resource) that metrics-server, kubectl top and the
// HorizontalPodAutoscaler read.
//
// Containers come from the CRI runtime (ListContainerStats); pods from
// ListPodSandboxStats where the runtime serves it, otherwise, as the
// kubelet's CRI stats provider does without cAdvisor, from the sum of their
// containers and the network counters of the sandbox's network namespace.
// The node is measured from /proc and statfs; volumes and logs with a
// du-like walk whose results are cached, since walking a large emptyDir on
// every scrape would cost more than the scrape.
//
// CRI reports cumulative CPU time; a rate (usageNanoCores) needs two
// samples. The Provider keeps the previous sample of each container, pod
// and of the node and derives the rate from it when the runtime gives none,
// as the kubelet does. It does not collect in the background: the rate is
// that between two scrapes at least MinCPUSampleInterval apart.
//
// What it does not do: accelerators, PSI, swap, per-process stats, and the
// kubelet's system containers ("kubelet", "runtime", "pods").
package stats
