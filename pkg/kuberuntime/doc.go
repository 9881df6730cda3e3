// Package kuberuntime is the agent's per-pod sync loop: it compares a pod's
// desired containers (ephemeral ones above all) with what the CRI runtime
// reports, plans the actions that close the gap as a pure function, and
// carries them out with CRI calls.
//
// It is meant to be embedded by any node agent: it depends on small interfaces
// it declares itself (pod source, CRI runtime, status and event sinks), keeps
// no globals, and derives "already started" from CRI state rather than memory.
package kuberuntime
