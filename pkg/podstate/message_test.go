package podstate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

func TestTerminationMessage(t *testing.T) {
	dir := t.TempDir()
	msgFile := filepath.Join(dir, "msg")
	emptyFile := filepath.Join(dir, "empty")
	logFile := filepath.Join(dir, "0.log")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(msgFile, []byte("written by the container"), 0o644))
	must(os.WriteFile(emptyFile, nil, 0o644))
	must(os.WriteFile(logFile, []byte(
		"2026-01-02T03:04:05.000000000Z stdout F starting\n"+
			"2026-01-02T03:04:05.100000000Z stderr P part one, \n"+
			"2026-01-02T03:04:05.200000000Z stderr F part two\n"), 0o644))
	status := func(exit int32, hostPath string) *runtimeapi.ContainerStatus {
		return &runtimeapi.ContainerStatus{
			State: runtimeapi.ContainerState_CONTAINER_EXITED, ExitCode: exit, LogPath: logFile, Message: "runtime says",
			Mounts: []*runtimeapi.Mount{{ContainerPath: "/dev/termination-log", HostPath: hostPath}},
		}
	}
	info := func(policy v1.TerminationMessagePolicy) criconfig.ContainerInfo {
		return criconfig.ContainerInfo{TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: policy}
	}
	for _, tc := range []struct {
		name string
		st   *runtimeapi.ContainerStatus
		info criconfig.ContainerInfo
		want string
	}{
		{"the file the container wrote", status(1, msgFile), info(v1.TerminationMessageReadFile), "written by the container"},
		{"empty file, File policy: the runtime's message", status(1, emptyFile), info(v1.TerminationMessageReadFile), "runtime says"},
		{"empty file, fallback on failure: the log's tail", status(1, emptyFile), info(v1.TerminationMessageFallbackToLogsOnError), "starting\npart one, part two\n"},
		{"empty file, fallback but success: no log", status(0, emptyFile), info(v1.TerminationMessageFallbackToLogsOnError), "runtime says"},
		{"file wins over the fallback", status(1, msgFile), info(v1.TerminationMessageFallbackToLogsOnError), "written by the container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := terminationMessage(tc.st, tc.info); got != tc.want {
				t.Errorf("terminationMessage = %q, want %q", got, tc.want)
			}
		})
	}

	long := strings.Repeat("x", 10000)
	must(os.WriteFile(msgFile, []byte(long), 0o644))
	if got := terminationMessage(status(1, msgFile), info(v1.TerminationMessageReadFile)); len(got) != maxTerminationMessage {
		t.Errorf("a long message is cut to %d bytes, got %d", maxTerminationMessage, len(got))
	}
}
