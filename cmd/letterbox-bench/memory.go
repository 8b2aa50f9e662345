package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// processTreePSS is the proportional set size (PSS, kB) of a process and all its
// descendants, from /proc (Linux). PSS charges each shared page to the processes sharing
// it in equal parts, so a sum over Dovecot's process-per-session tree and a single
// Letterbox process compare fairly. Reading another user's smaps_rollup needs root.
func processTreePSS(pid int) (int64, error) {
	parent := map[int]int{}
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // gone since the glob
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses, so cut at the last ')'.
		i := bytes.LastIndexByte(data, ')')
		fields := strings.Fields(string(data[i+1:]))
		if i < 0 || len(fields) < 2 {
			continue
		}
		p, err1 := strconv.Atoi(filepath.Base(dir))
		pp, err2 := strconv.Atoi(fields[1])
		if err1 == nil && err2 == nil {
			parent[p] = pp
		}
	}
	if _, ok := parent[pid]; !ok {
		return 0, fmt.Errorf("process %d not found", pid)
	}
	inTree := func(p int) bool {
		for range 64 { // bounded: process trees are not that deep
			if p == pid {
				return true
			}
			pp, ok := parent[p]
			if !ok || pp == 0 || pp == p {
				return false
			}
			p = pp
		}
		return false
	}
	var total int64
	for p := range parent {
		if !inTree(p) {
			continue
		}
		kb, err := pss(p)
		if err != nil && p == pid {
			return 0, err
		}
		total += kb
	}
	return total, nil
}

// pss reads the Pss line of /proc/PID/smaps_rollup, in kB.
func pss(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/smaps_rollup: no Pss line", pid)
}
