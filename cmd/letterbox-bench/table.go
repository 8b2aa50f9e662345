package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// tableCmd reads JSON reports (of one or several runs per server, e.g. one file per
// server and workload) and prints one Markdown table: per workload, each server's median,
// then the ratio of the first server to each other one. The repetitions of one server and
// workload in several files (runs alternated with other servers') make one cell. For seconds a ratio below 1 means
// the first server was faster; for ops/s, above 1.
func tableCmd(files []string, w io.Writer) error {
	if len(files) == 0 {
		return errors.New("table: give the JSON files of earlier runs")
	}
	var labels, names []string
	cells := map[[2]string]Result{} // (label, workload)
	var mach Machine
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("table: %w", err)
		}
		var rep Report
		if err := json.Unmarshal(data, &rep); err != nil {
			return fmt.Errorf("table: %s: %w", f, err)
		}
		mach = rep.Machine
		for _, r := range rep.Results {
			if !slices.Contains(labels, r.Label) {
				labels = append(labels, r.Label)
			}
			if !slices.Contains(names, r.Workload) {
				names = append(names, r.Workload)
			}
			key := [2]string{r.Label, r.Workload}
			if have, ok := cells[key]; ok { // another run of the same: one cell of all their repetitions
				have.Reps = append(have.Reps, r.Reps...)
				if have.Error == "" {
					have.Error = r.Error
				}
				have.summarise()
				r = have
			}
			cells[key] = r
		}
	}
	order := func(a, b string) int { return workloadIndex(a) - workloadIndex(b) }
	slices.SortStableFunc(names, order)
	head := []string{"workload"}
	head = append(head, labels...)
	for _, l := range labels[1:] {
		head = append(head, labels[0]+"/"+l)
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, name := range names {
		row := []string{name}
		base, haveBase := cells[[2]string{labels[0], name}]
		for _, l := range labels {
			row = append(row, cellText(cells, l, name))
		}
		for _, l := range labels[1:] {
			other, ok := cells[[2]string{l, name}]
			if !haveBase || !ok || other.Median == 0 || base.Error != "" || other.Error != "" {
				row = append(row, "-")
				continue
			}
			row = append(row, fmt.Sprintf("%.2f", base.Median/other.Median))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintf(w, "\nMedians of the repetitions; idle-fanout is the p99 notification latency (p50 / max in brackets; KB/session is the growth of the server's PSS per idle session), idle-latency the p99 from the LMTP 250 to the EXISTS (p50 / max), qresync is the resync SELECT (in brackets: its share of FETCH 1:* (FLAGS) in the same session), mixed is ops/s (higher is better).\nMachine: %d CPUs, %s, Linux %s.\n", mach.CPUs, mach.Model, mach.Kernel)
	return nil
}

func cellText(cells map[[2]string]Result, label, name string) string {
	r, ok := cells[[2]string{label, name}]
	switch {
	case !ok:
		return "-"
	case r.Error != "":
		return "error"
	}
	s := fmtValue(r.Median, r.Unit)
	if r.Latency != nil {
		s += fmt.Sprintf(" (%s / %s)", fmtValue(r.Latency.P50, "s"), fmtValue(r.Latency.Max, "s"))
	}
	if r.KBPerSession != 0 {
		s += fmt.Sprintf(", %.0f KB/session", r.KBPerSession)
	}
	if r.Ratio != 0 {
		s += fmt.Sprintf(" (%.1f%% of FETCH FLAGS)", 100*r.Ratio)
	}
	if r.Errors > 0 {
		s += fmt.Sprintf(", %d errors", r.Errors)
	}
	return s
}

func workloadIndex(name string) int {
	for i, w := range workloads {
		if w.name == name {
			return i
		}
	}
	return len(workloads)
}
