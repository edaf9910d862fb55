package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/surgeload/surge/internal/freeport"
	"github.com/surgeload/surge/internal/poll"
)

// procs owns every process the harness starts, and kills them all.
type procs struct {
	cmds []*exec.Cmd
}

func (p *procs) start(name string, args []string, logf io.Writer) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(name), err)
	}
	p.cmds = append(p.cmds, cmd)
	return cmd, nil
}

func (p *procs) killAll() {
	for i := len(p.cmds) - 1; i >= 0; i-- {
		c := p.cmds[i]
		if c.Process == nil {
			continue
		}
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	p.cmds = nil
}

// pin decides core placement: with two cores or more, targets (nginx, the
// latency target) and surge's controller and CLI (at nice 19) on core 0
// and the load generator on the last core, so the tool measured never
// shares its core with the server.
func (e *env) pin() {
	if _, err := exec.LookPath("taskset"); err != nil || runtime.NumCPU() < 2 {
		e.pinNote = "not pinned (taskset missing or fewer than 2 cores)"
		return
	}
	last := strconv.Itoa(runtime.NumCPU() - 1)
	e.pinTarget = []string{"taskset", "-c", "0"}
	e.pinClient = []string{"taskset", "-c", last}
	e.pinInfra = append([]string{"nice", "-n", "19"}, e.pinTarget...)
	e.pinNote = "target (nginx, 2 workers; surge target) on core 0, and surge's controller and CLI there too at nice 19 (they yield to the target); client on core " + last
}

func (e *env) cmd(pin []string, name string, args ...string) (string, []string) {
	if len(pin) == 0 {
		return name, args
	}
	return pin[0], append(append(append([]string{}, pin[1:]...), name), args...)
}

// freePorts is n distinct free loopback ports (freeport.Addrs).
func freePorts(n int) ([]int, error) {
	addrs, err := freeport.Addrs(n)
	if err != nil {
		return nil, err
	}
	ports := make([]int, len(addrs))
	for i, a := range addrs {
		_, p, _ := strings.Cut(a, ":")
		if ports[i], err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("free port %q: %w", a, err)
		}
	}
	return ports, nil
}

// freePort is one free loopback port.
func freePort() (int, error) {
	p, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// waitTCP waits until addr accepts a connection, for at most within.
func waitTCP(ctx context.Context, addr string, within time.Duration) error {
	err := poll.Until(within, func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		return fmt.Errorf("%s not listening: %w", addr, err)
	}
	return nil
}

// maxFDs is the most file descriptors one process may hold on the
// machines this runs on.
const maxFDs = 20000

// waitQuiet waits until pid's CPU time stops growing (at most one clock
// tick, 10 ms, in 200 ms), for at most 5 s; past that it says so (the
// figure read next then holds some of that work).
func (e *env) waitQuiet(ctx context.Context, pid int) {
	const step, within = 200 * time.Millisecond, 5 * time.Second
	prev, err := procCPU(pid)
	if err != nil {
		return
	}
	for deadline := time.Now().Add(within); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return
		case <-time.After(step):
		}
		cur, err := procCPU(pid)
		if err != nil || cur-prev < 0.015 {
			return
		}
		prev = cur
	}
	e.busy++
}

// procCPU is a process's user + system CPU seconds from /proc/PID/stat.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const clkTck = 100 // USER_HZ on Linux
	return (ut + st) / clkTck, nil
}

// procRSSKiB is a process's resident set from /proc/PID/status.
func procRSSKiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	return lastLines(string(b), 10)
}
