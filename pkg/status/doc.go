// Package status computes pod and container statuses (ephemeral container
// statuses above all) from CRI state and sends them to the API server,
// coalesced per pod, conflict-safe, and without losing a transition.
package status
