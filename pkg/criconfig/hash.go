package criconfig

import (
	"encoding/json"
	"hash/fnv"
	"strconv"

	v1 "k8s.io/api/core/v1"
)

// HashContainer returns a stable hash of the parts of c's spec that decide
// whether a running container still matches it: FNV-64a of the JSON of its
// name and image, in hex.
//
// Like the kubelet, it hashes only the fields that may change on a running
// pod (image is the one mutable container field; ephemeral containers are
// immutable). Hashing the whole spec would restart every container after a
// control-plane upgrade that adds a defaulted field. The value differs from
// the kubelet's own (FNV-32a over a debug dump), so a container created by a
// kubelet looks changed to the agent; they never manage the same pods.
func HashContainer(c *v1.Container) string {
	// A map marshals with sorted keys, so the JSON is stable; it cannot
	// fail for two strings.
	b, _ := json.Marshal(map[string]string{"name": c.Name, "image": c.Image})
	h := fnv.New64a()
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 16)
}
