package debugpolicy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// Snapshot is the policy in force and where it came from, as the agent's
// API serves it.
type Snapshot struct {
	// Path is the policy file; "" when the agent runs without a policy.
	Path string `json:"path,omitempty"`
	// Policy is the policy in force; nil: none, everything is allowed.
	Policy *DebugPolicy `json:"policy,omitempty"`
	// LoadedAt is when Policy was read.
	LoadedAt time.Time `json:"loadedAt,omitzero"`
	// Generation counts the policies loaded, from 1.
	Generation int64 `json:"generation,omitempty"`
	// LastError is the last reload's error when the file now on disk was
	// refused; the previous policy stays in force. Empty once a reload
	// succeeds.
	LastError string `json:"lastError,omitempty"`
	// LastErrorAt is when LastError was found.
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
}

// Source holds the policy of a file and reloads it when the file changes.
// A file refused on reload leaves the previous policy in force. It is safe
// for concurrent use; a nil *Source has no policy.
type Source struct {
	path string
	// read is os.ReadFile; tests replace it.
	read func(string) ([]byte, error)
	now  func() time.Time

	mu   sync.RWMutex
	snap Snapshot
	// raw is the content of the file in force or last refused, so that an
	// unchanged file is neither parsed nor reported again.
	raw []byte
	// onChange is called after each successful reload.
	onChange func(Snapshot)
}

// NewSource reads the policy file at path. A file that cannot be read or
// that Parse refuses is an error: the agent must not start with a policy
// other than the one its operator wrote.
func NewSource(path string) (*Source, error) {
	s := &Source{path: path, read: os.ReadFile, now: time.Now}
	b, err := s.read(path)
	if err != nil {
		return nil, fmt.Errorf("read debug policy: %w", err)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("debug policy %s: %w", path, err)
	}
	s.raw = b
	s.snap = Snapshot{Path: path, Policy: p, LoadedAt: s.now(), Generation: 1}
	return s, nil
}

// Snapshot returns the policy in force.
func (s *Source) Snapshot() Snapshot {
	if s == nil {
		return Snapshot{}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.snap
}

// Policy returns the policy in force; nil: none.
func (s *Source) Policy() *DebugPolicy {
	return s.Snapshot().Policy
}

// OnChange sets f to be called after each policy reloaded; call it before
// Run.
func (s *Source) OnChange(f func(Snapshot)) { s.onChange = f }

// Run checks the file every period until ctx ends and reloads it when its
// content changed. It polls the content rather than watching inotify
// events: a ConfigMap volume replaces the file through a symlink swap of
// its directory, which a watch on the file misses, and a poll of one small
// file costs nothing.
func (s *Source) Run(ctx context.Context, period time.Duration) {
	wait.UntilWithContext(ctx, s.Reload, period)
}

// Reload reads the file once and, when its content changed, parses it: a
// good policy replaces the one in force, a bad one is logged with every
// problem and kept in Snapshot's LastError, the one in force staying.
func (s *Source) Reload(ctx context.Context) {
	logger := klog.FromContext(ctx)
	b, err := s.read(s.path)
	s.mu.Lock()
	if err == nil && bytes.Equal(b, s.raw) {
		s.mu.Unlock()
		return
	}
	if err != nil {
		err = fmt.Errorf("read debug policy: %w", err)
	} else {
		s.raw = b
		var p *DebugPolicy
		if p, err = Parse(b); err == nil {
			s.snap = Snapshot{Path: s.path, Policy: p, LoadedAt: s.now(), Generation: s.snap.Generation + 1}
			snap := s.snap
			s.mu.Unlock()
			logger.Info("Loaded debug policy", "path", s.path, "generation", snap.Generation, "rules", len(p.Rules))
			if s.onChange != nil {
				s.onChange(snap)
			}
			return
		}
		err = fmt.Errorf("debug policy %s: %w", s.path, err)
	}
	repeated := s.snap.LastError == err.Error()
	if !repeated {
		s.snap.LastError, s.snap.LastErrorAt = err.Error(), s.now()
	}
	gen := s.snap.Generation
	s.mu.Unlock()
	if !repeated {
		logger.Error(err, "Refused the debug policy file, the previous policy stays in force", "path", s.path, "generation", gen)
	}
}
