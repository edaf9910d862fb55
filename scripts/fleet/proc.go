package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// child is one process this program started (a surge controller, agent
// or target). It is stopped by its own pid, never by name.
type child struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process exited
	err  error         // Wait's result, set before done closes
}

// startChild starts path with args, its output to dir/name.log.
func startChild(name, dir, path string, args ...string) (*child, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, path, err)
	}
	c := &child{name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { // ends when the process exits; stop waits for it
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process ended, and how.
func (c *child) exited() (bool, error) {
	select {
	case <-c.done:
		return true, c.err
	default:
		return false, nil
	}
}

// stop asks the process to end (SIGTERM), waits up to grace, then kills it.
func (c *child) stop(grace time.Duration) {
	if done, _ := c.exited(); !done {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(grace):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	_ = c.log.Close()
}

// cpu is the process's user + system CPU time so far (/proc/PID/stat).
func (c *child) cpu() (time.Duration, error) { return procCPU(c.pid()) }

// rssKiB is the process's resident set (/proc/PID/status VmRSS).
func (c *child) rssKiB() (int64, error) {
	m, err := procMem(c.pid())
	return m.rss, err
}

// mem is a process's resident set, in KiB: all of it (VmRSS), and its
// anonymous part (RssAnon: heap and stacks; the rest is mostly files
// mapped in, such as a bbolt database).
type mem struct{ rss, anon int64 }

// clkTck is USER_HZ, the unit of /proc/PID/stat times on Linux.
const clkTck = 100

func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpu of %d: bad /proc stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu of %d: short /proc stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

func procMem(pid int) (mem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return mem{}, fmt.Errorf("rss of %d: %w", pid, err)
	}
	var m mem
	var seen int
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || (f[0] != "VmRSS:" && f[0] != "RssAnon:") {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return mem{}, fmt.Errorf("rss of %d: %w", pid, err)
		}
		if f[0] == "VmRSS:" {
			m.rss = v
		} else {
			m.anon = v
		}
		seen++
	}
	if seen != 2 {
		return mem{}, fmt.Errorf("rss of %d: no VmRSS or RssAnon", pid)
	}
	return m, nil
}

// controllerProc is a surge controller started as a child process, and a
// client of its CLI services.
type controllerProc struct {
	*child
	addr   string
	cc     *grpc.ClientConn
	runs   surgev1.RunsClient
	agents surgev1.AgentsClient
}

// startController starts `surge controller` serving gRPC on addr and
// gossip on gossip, with its data in dir, and waits until it answers. The
// caller picks every port of its processes in one freeport.Addrs call: ports
// picked in two calls may coincide, as a port closed after the first is
// free again for the second.
func startController(ctx context.Context, surge, dir, addr, gossip string, extra ...string) (*controllerProc, error) {
	data := filepath.Join(dir, "controller-data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, fmt.Errorf("controller data dir: %w", err)
	}
	ch, err := startChild("controller", dir, surge, append([]string{"controller", "--listen", addr, "--gossip", gossip,
		"--data-dir", data, "--log-level", "warn"}, extra...)...)
	if err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		ch.stop(5 * time.Second)
		return nil, fmt.Errorf("controller client: %w", err)
	}
	c := &controllerProc{child: ch, addr: addr, cc: cc, runs: surgev1.NewRunsClient(cc), agents: surgev1.NewAgentsClient(cc)}
	if err := c.waitReady(ctx, 30*time.Second); err != nil {
		c.stop(5 * time.Second)
		return nil, err
	}
	return c, nil
}

func (c *controllerProc) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.agents.List(cctx, &surgev1.ListAgentsRequest{})
		cancel()
		if err == nil {
			return nil
		}
		if done, werr := c.exited(); done {
			return fmt.Errorf("controller exited (%v); see %s", werr, c.log.Name())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("controller did not answer within %s: %w", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitAgents waits until n agents are connected.
func (c *controllerProc) waitAgents(ctx context.Context, n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	got := 0
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := c.agents.List(cctx, &surgev1.ListAgentsRequest{})
		cancel()
		if err == nil {
			got = 0
			for _, a := range resp.GetAgents() {
				if a.GetState() == "connected" {
					got++
				}
			}
			if got >= n {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d of %d agents connected after %s", got, n, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *controllerProc) stop(grace time.Duration) {
	if c.cc != nil {
		_ = c.cc.Close()
	}
	c.child.stop(grace)
}

// logLines counts the controller log's lines at warn and error level.
func logLevels(path string) (warn, errs int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(l, "level=WARN"):
			warn++
		case strings.Contains(l, "level=ERROR"), strings.Contains(l, "panic:"):
			errs++
		}
	}
	return warn, errs
}
