package criconfig

import (
	"encoding/json"
	"errors"
	"fmt"
)

// VerbosePID returns the host PID of a sandbox's or container's first
// process from the info map of the runtime's verbose status: "info" holds
// JSON with a "pid", as containerd and CRI-O report it.
func VerbosePID(info map[string]string) (int, error) {
	raw, ok := info["info"]
	if !ok {
		return 0, errors.New("the runtime reports no process ID (no \"info\" in the verbose status)")
	}
	var v struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return 0, fmt.Errorf("parse the verbose status: %w", err)
	}
	if v.PID <= 0 {
		return 0, errors.New("the runtime reports no process ID (no \"pid\" in the verbose status)")
	}
	return v.PID, nil
}
