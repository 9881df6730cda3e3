package podstate

import (
	"io"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/criconfig"
)

// Limits of a termination message, as the kubelet's: the file is read up
// to 4 KiB; the log fallback takes at most 80 lines and 2 KiB.
const (
	maxTerminationMessage = 4096
	maxFallbackLines      = 80
	maxFallbackBytes      = 2048
)

func terminationMessage(st *runtimeapi.ContainerStatus, info criconfig.ContainerInfo) string {
	if info.TerminationMessagePath != "" {
		for _, m := range st.GetMounts() {
			if m.GetContainerPath() != info.TerminationMessagePath {
				continue
			}
			if b, err := readAtMost(m.GetHostPath(), maxTerminationMessage); err == nil && len(b) > 0 {
				return string(b)
			}
		}
	}
	if info.TerminationMessagePolicy == v1.TerminationMessageFallbackToLogsOnError && st.GetExitCode() != 0 && st.GetLogPath() != "" {
		if tail := logTail(st.GetLogPath()); tail != "" {
			return tail
		}
	}
	return st.GetMessage()
}

func readAtMost(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// logTail returns the last lines of a CRI-format log file, message text
// only (the timestamp, stream and tag fields are cut).
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// Enough of the file's end for 80 short lines.
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		_, _ = f.Seek(fi.Size()-window, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > maxFallbackLines {
		lines = lines[len(lines)-maxFallbackLines:]
	}
	var out strings.Builder
	for _, l := range lines {
		// "2026-01-02T03:04:05.000000000Z stdout F text"
		if parts := strings.SplitN(l, " ", 4); len(parts) == 4 {
			out.WriteString(parts[3])
			if parts[2] == "F" {
				out.WriteByte('\n')
			}
		}
	}
	msg := out.String()
	if len(msg) > maxFallbackBytes {
		msg = msg[len(msg)-maxFallbackBytes:]
	}
	return msg
}
