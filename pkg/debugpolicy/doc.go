// Package debugpolicy is a node's policy for debug (ephemeral) containers:
// the versioned configuration file (kind DebugPolicy), its validation, and
// the pure decision for one debug container (Decide): allowed or denied
// with a message naming the rule, and the deciding rule's resource caps and
// time limits.
//
// Nothing of it changes the API: the pod spec stays as the user wrote it,
// and with no policy the agent allows what the kubelet allows. Rules are
// tried in order; the first whose namespace selector matches decides, and
// a debug container no rule matches is allowed with no limits.
//
// The package decides only; the sync loop carries a denial out (a final
// Terminated status, a Warning Event, an audit line) and the caps and time
// limits.
package debugpolicy
