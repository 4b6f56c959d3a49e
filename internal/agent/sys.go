package agent

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/peerllm/peerllm/internal/fabric"
)

// detectHardware reports the cores Go may use, the total memory from
// /proc/meminfo and NVIDIA GPUs from the driver's /proc files (zero values
// where they cannot be read, e.g. off Linux).
func detectHardware() fabric.Hardware {
	return fabric.Hardware{
		Cores:       runtime.NumCPU(),
		MemoryBytes: memTotal("/proc/meminfo"),
		GPU:         nvidiaGPUs("/proc/driver/nvidia/gpus"),
	}
}

// nvidiaGPUs lists the models in dir/*/information ("Model: ..." lines),
// comma-separated, or "" when there are none.
func nvidiaGPUs(dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "*", "information"))
	var models []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if m, ok := strings.CutPrefix(line, "Model:"); ok {
				models = append(models, strings.TrimSpace(m))
				break
			}
		}
	}
	return strings.Join(models, ", ")
}

func memTotal(path string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// MemTotal:       16318432 kB
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// cpuMeter measures whole-machine CPU utilisation between calls from the
// aggregate line of /proc/stat.
type cpuMeter struct {
	mu         sync.Mutex
	path       string
	busy, idle uint64
	last       float64
}

// lastUtil is the utilisation the latest util call returned.
func (m *cpuMeter) lastUtil() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// util returns the utilisation (0..1) since the previous call; the first
// call, and any call where /proc/stat is unreadable, returns 0.
func (m *cpuMeter) util() float64 {
	busy, idle, ok := readCPU(m.path)
	if !ok {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prevBusy, prevIdle := m.busy, m.idle
	m.busy, m.idle = busy, idle
	if prevBusy+prevIdle == 0 || busy < prevBusy || idle < prevIdle {
		return 0
	}
	db, di := busy-prevBusy, idle-prevIdle
	if db+di == 0 {
		return m.last
	}
	m.last = float64(db) / float64(db+di)
	return m.last
}

func readCPU(path string) (busy, idle uint64, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, false
	}
	// user nice system idle iowait irq softirq steal ...
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		if i >= 8 { // guest and guest_nice are already counted in user/nice
			break
		}
		if i == 3 || i == 4 {
			idle += v
		} else {
			busy += v
		}
	}
	return busy, idle, true
}
