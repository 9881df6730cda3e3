package podstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Record is the durable trace that an ephemeral container was created: the
// agent writes it once CreateContainer returned and before StartContainer,
// so that a container the runtime later loses (crictl rm, a sandbox
// removed, runtime state wiped) is never created a second time.
type Record struct {
	// ContainerID is the CRI container created last for it. It is empty
	// while a replacement is under way: the aborted container was (or is
	// about to be) removed and the new one is not created yet.
	ContainerID string `json:"containerID"`
	// Replacements counts the containers created again because the agent's
	// own death aborted their start (see AbortedStart).
	Replacements int `json:"replacements,omitempty"`
	// LostReported is set once the loss of the container was told in an
	// Event, so it is told once.
	LostReported bool `json:"lostReported,omitempty"`
	// StartInterrupted names the container a start of which was
	// interrupted: the runtime went away during StartContainer (a
	// restart), or the agent did and found it still CREATED. A later
	// start of it that fails while creating its task failed on the
	// remains of the interrupted one, and never ran the command.
	StartInterrupted string `json:"startInterrupted,omitempty"`
	// Ended, when set, is the agent's own account of how the debug
	// container ended: the debug policy denied it or a stop was requested
	// before it was created (ContainerID empty: it never ran), or the
	// agent stopped it (a stop request, a time limit). It is written
	// before the container is stopped, so that its status names why,
	// whatever its exit code.
	Ended *Ending `json:"ended,omitempty"`
	// Unreadable marks a record file that exists but could not be decoded:
	// it still witnesses that the container was created.
	Unreadable bool `json:"-"`
}

// Ending is why the agent ended a debug container; Reason is one of
// debugapi's reasons.
type Ending struct {
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// RecordStore keeps Records as one small JSON file per pod UID and
// container name, under DIR/UID/ephemeral-containers/NAME. DIR is the
// directory that holds the pods' volumes (--root-dir/pods), so the records
// go when the pod's directory is removed, and only then. Writes are atomic
// and fsync'd: after a crash a record is either whole or absent.
type RecordStore struct {
	dir string
}

// NewRecordStore returns the store under podsDir.
func NewRecordStore(podsDir string) *RecordStore { return &RecordStore{dir: podsDir} }

const recordsSubdir = "ephemeral-containers"

// List returns the records of the pod with that UID, by container name.
func (s *RecordStore) List(uid types.UID) (map[string]Record, error) {
	dir := filepath.Join(s.dir, string(uid), recordsSubdir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list start records: %w", err)
	}
	out := make(map[string]Record, len(entries))
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read start record: %w", err)
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			// A record that cannot be read still says the container was
			// created: that is all "never create again" needs.
			r = Record{Unreadable: true}
		}
		out[e.Name()] = r
	}
	return out, nil
}

// Put writes the record of container name of the pod with that UID,
// replacing any earlier one, and returns once it is on disk.
func (s *RecordStore) Put(uid types.UID, name string, r Record) error {
	dir := filepath.Join(s.dir, string(uid), recordsSubdir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create start record directory: %w", err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode start record: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+name+"-")
	if err != nil {
		return fmt.Errorf("write start record: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write start record: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync start record: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write start record: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write start record: %w", err)
	}
	// The rename is durable only once the directory is.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync start record directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync start record directory: %w", err)
	}
	return nil
}
