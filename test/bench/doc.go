// Package bench holds nothing itself: its subpackages make up the
// ephemeral-bench command (cmd/ephemeral-bench), which measures debug
// container latency and idle cost of a node agent against the raw CRI
// runtime. stats and targets are pure; floor and node talk to real services;
// result is the JSON both write and report reads.
package bench
