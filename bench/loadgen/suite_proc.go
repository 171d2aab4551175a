package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// What the suite reads of the service process and of the machine, from
// /proc (Linux only).

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, which
// Linux fixes at 100 for user space whatever the kernel's own tick.
const userHZ = 100

// parseStatCPU returns utime+stime of a /proc/<pid>/stat line. The command
// name (field 2) is in parentheses and may itself hold spaces and ')', so
// the fields are counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("stat: no command name")
	}
	fields := strings.Fields(stat[end+1:])
	// fields[0] is field 3 (state); utime is field 14, stime field 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name", len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// processCPU is the CPU time (user + system) pid has used so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// cpuPerRequest is the CPU a process spent per request between two
// readings, in milliseconds; 0 without requests.
func cpuPerRequest(before, after time.Duration, requests int) float64 {
	if requests <= 0 || after < before {
		return 0
	}
	return round(float64(after-before)/float64(time.Millisecond)/float64(requests), 3)
}

// memory is what /proc/<pid>/status says of a process's resident memory.
type memory struct {
	RSS int64 // VmRSS, bytes
	HWM int64 // VmHWM, bytes: the peak RSS since start or the last reset
}

// parseStatus reads VmRSS and VmHWM (in kB) from /proc/<pid>/status.
func parseStatus(status string) (memory, error) {
	var m memory
	var seen int
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("status: %s is %q", key, value)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("status: %s: %w", key, err)
		}
		if key == "VmRSS" {
			m.RSS = kb * 1024
		} else {
			m.HWM = kb * 1024
		}
		seen++
	}
	if seen != 2 {
		return m, errors.New("status: no VmRSS/VmHWM")
	}
	return m, nil
}

func processMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	return parseStatus(string(b))
}

// resetPeak sets pid's VmHWM back to its current RSS (clear_refs "5"), so
// that the next reading is the peak of what follows. Not every kernel or
// user may; then the sampled peak is all there is.
func resetPeak(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// peakSampler follows a process's RSS while a scenario runs: the maximum of
// VmRSS read every interval, and VmHWM at the end when it could be reset
// at the start (it also catches peaks between two samples).
type peakSampler struct {
	pid   int
	reset bool
	stop  chan struct{}
	done  sync.WaitGroup
	max   int64
}

func samplePeak(pid int, every time.Duration) *peakSampler {
	p := &peakSampler{pid: pid, reset: resetPeak(pid), stop: make(chan struct{})}
	p.done.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if m, err := processMemory(pid); err == nil {
				p.max = max(p.max, m.RSS)
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	})
	return p
}

// end stops sampling and returns the peak RSS in bytes.
func (p *peakSampler) end() int64 {
	close(p.stop)
	p.done.Wait()
	if m, err := processMemory(p.pid); err == nil {
		p.max = max(p.max, m.RSS)
		if p.reset {
			p.max = max(p.max, m.HWM)
		}
	}
	return p.max
}

// cpuModel is the "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo string) string {
	sc := bufio.NewScanner(strings.NewReader(cpuinfo))
	for sc.Scan() {
		if key, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown"
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// load1 is the one-minute load average of a loadAverage string.
func load1(avg string) float64 {
	f := strings.Fields(avg)
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func mib(b int64) float64 { return round(float64(b)/(1<<20), 1) }

// selfCPU is the CPU time (user + system) of the suite's own process so
// far: the load generator's, all its threads, without its children (the
// service).
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// procCPU is the CPU time each process of a kind had used at one moment,
// by pid.
type procCPU map[int]time.Duration

// commCPU reads utime+stime of every process under procRoot (normally
// "/proc") whose command name (field 2 of /proc/<pid>/stat) is comm. A
// process that ends between the listing and the reading is skipped.
func commCPU(procRoot, comm string) (procCPU, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	cpu := procCPU{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue // gone, or not ours to read
		}
		stat := string(b)
		open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
		if open < 0 || end < open || stat[open+1:end] != comm {
			continue
		}
		if d, err := parseStatCPU(stat); err == nil {
			cpu[pid] = d
		}
	}
	return cpu, nil
}

// since is the CPU the processes of after used since before: per pid the
// difference, and all of it for a process that started in between (or
// whose pid was reused, when it has less than before). A process that
// ended in between is not in after: what it used during the run is lost,
// and the sum is a lower bound.
func (after procCPU) since(before procCPU) time.Duration {
	var sum time.Duration
	for pid, a := range after {
		if b, ok := before[pid]; ok && b <= a {
			sum += a - b
		} else {
			sum += a
		}
	}
	return sum
}

// cpuTicks is the machine's line "cpu" of /proc/stat: all cores' time
// since boot, in USER_HZ ticks.
type cpuTicks struct {
	Busy  int64 // total − idle − iowait
	Total int64 // user + nice + system + idle + iowait + irq + softirq + steal
}

// parseCPULine reads the "cpu" line of /proc/stat. guest and guest_nice
// are already counted in user and nice, so they are left out of the total.
func parseCPULine(stat string) (cpuTicks, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTicks{}, errors.New("/proc/stat: no cpu line first")
	}
	var v [8]int64 // user nice system idle iowait irq softirq steal; older kernels have fewer
	for i := 1; i < len(f) && i <= len(v); i++ {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return cpuTicks{}, fmt.Errorf("/proc/stat: cpu field %d: %w", i, err)
		}
		v[i-1] = n
	}
	var t cpuTicks
	for _, n := range v {
		t.Total += n
	}
	t.Busy = t.Total - v[3] - v[4]
	return t, nil
}

// machineCPU reads the "cpu" line of procRoot's stat.
func machineCPU(procRoot string) (cpuTicks, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return cpuTicks{}, err
	}
	return parseCPULine(string(b))
}

// busyPercent is the share of all cores' time that was busy between two
// readings, in %; 0 when no time passed.
func busyPercent(before, after cpuTicks) float64 {
	total := after.Total - before.Total
	if total <= 0 {
		return 0
	}
	return round(float64(after.Busy-before.Busy)/float64(total)*100, 1)
}
