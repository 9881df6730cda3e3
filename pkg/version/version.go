// Package version holds the agent's version, stamped at build time.
package version

import "runtime/debug"

// Version is the agent's version. The Makefile sets it with
// -ldflags "-X github.com/ephemeral-agent/ephemeral-agent/pkg/version.Version=...";
// a plain go build falls back to the module version, or v0.0.0-dev.
var Version = ""

// Get returns the agent's version in semver form, as reported in the Node's
// ephemeral-agent.io/version annotation (status.nodeInfo.kubeletVersion
// holds Kubernetes).
func Get() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "v0.0.0-dev"
}
