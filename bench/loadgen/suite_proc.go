package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
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
