package criconfig

import v1 "k8s.io/api/core/v1"

// PodQOS returns the pod's QoS class: the one the API server put in its
// status, else computed the same way from the requests and limits of CPU
// and memory (pod-level resources first). The pod cgroup manager places
// pods in their tier by it.
func PodQOS(pod *v1.Pod) v1.PodQOSClass { return podQOS(pod) }
