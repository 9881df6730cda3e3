package node

import (
	"fmt"
	"math"

	"github.com/prometheus/procfs"
)

// cpuSeconds returns the user+system CPU time process pid has used so far,
// from <procRoot>/PID/stat. procfs reads the fields after the last ')', so a
// command name with spaces or parentheses does not shift them, and divides
// the clock ticks by USER_HZ, 100: the kernel reports /proc times in those
// units on every Linux architecture, whatever its internal HZ (the idle
// figures use the same conversion).
func cpuSeconds(procRoot string, pid int) (float64, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", procRoot, err)
	}
	p, err := fs.Proc(pid)
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	st, err := p.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat of process %d: %w", pid, err)
	}
	return st.CPUTime(), nil
}

// workloadCPU turns the agent's CPU seconds over a workload into its total,
// rounded to the 10 ms of a clock tick, and its milliseconds per request,
// rounded to 0.1 ms.
func workloadCPU(seconds float64, requests int) (total, msPerRequest float64) {
	total = math.Round(seconds*100) / 100
	if requests > 0 {
		msPerRequest = math.Round(seconds*1000/float64(requests)*10) / 10
	}
	return total, msPerRequest
}
