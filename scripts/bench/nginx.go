package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// startNginx starts the target of the throughput and pacing runs: one
// port without an access log, one that logs each request's time.
func (e *env) startNginx() error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	addr, err := e.startNginxConf("nginx", ports[0], 2, 8192, false, ports[1])
	if err != nil {
		return err
	}
	e.nginxURL = "http://" + addr + "/"
	e.pacedURL = fmt.Sprintf("http://127.0.0.1:%d/", ports[1])
	e.accessLog = filepath.Join(e.tmp, "nginx", "access.log")
	return waitTCP(context.Background(), fmt.Sprintf("127.0.0.1:%d", ports[1]), 10*time.Second)
}

// startNginxConf starts an nginx on 127.0.0.1:port with workers worker
// processes of conns connections each (SO_REUSEPORT spreads connections
// across workers when reuseport), keep-alive, a small fixed answer; it
// returns the address once nginx listens. With logged > 0, it serves the
// same answer on logged too, writing each request's time ($msec: seconds,
// millisecond resolution) to access.log in its directory.
func (e *env) startNginxConf(name string, port, workers, conns int, reuseport bool, logged int) (string, error) {
	dir := filepath.Join(e.tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	listenOpts := "backlog=4096"
	if reuseport {
		listenOpts += " reuseport"
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes %[3]d;
worker_rlimit_nofile %[4]d;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections %[4]d; }
http {
  access_log off;
  keepalive_timeout 1h;
  keepalive_requests 100000000;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d %[5]s;
    location / { default_type text/plain; return 200 "ok"; }
  }
%[6]s}
`, dir, port, workers, min(conns, maxFDs-64), listenOpts, loggedServer(dir, logged))
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return "", err
	}
	n, args := e.cmd(e.pinTarget, e.o.nginx, "-p", dir, "-c", cf)
	if _, err := e.ps.start(n, args, e.log); err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return addr, waitTCP(context.Background(), addr, 10*time.Second)
}

// loggedServer is nginx's server block on port that logs each request's
// time, buffered (the log is read after each run), or "" for port 0.
func loggedServer(dir string, port int) string {
	if port == 0 {
		return ""
	}
	return fmt.Sprintf(`  log_format msec '$msec';
  server {
    listen 127.0.0.1:%[2]d backlog=4096;
    access_log %[1]s/access.log msec buffer=256k flush=1s;
    location / { default_type text/plain; return 200 "ok"; }
  }
`, dir, port)
}

// fileSize is path's size, 0 when it does not exist yet.
func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// readAccessLog returns the request times (Unix milliseconds) nginx
// logged in path from offset from on, once nginx wrote its buffer: when
// the file stops growing for 2.5 s (nginx flushes it every second).
func readAccessLog(ctx context.Context, path string, from int64) ([]int64, error) {
	const still, within = 2500 * time.Millisecond, 30 * time.Second
	size, err := fileSize(path)
	if err != nil {
		return nil, err
	}
	changed := time.Now()
	for deadline := time.Now().Add(within); time.Since(changed) < still; {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s still growing after %s", path, within)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		s, err := fileSize(path)
		if err != nil {
			return nil, err
		}
		if s != size {
			size, changed = s, time.Now()
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, err
	}
	return parseAccessLog(f, path)
}

// parseAccessLog reads lines of nginx's $msec ("1733561234.567").
func parseAccessLog(r io.Reader, name string) ([]int64, error) {
	var out []int64
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		sec, frac, ok := strings.Cut(sc.Text(), ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		ms, err2 := strconv.ParseInt(frac, 10, 64)
		if !ok || len(frac) != 3 || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s:%d: %q is not nginx's $msec", name, line, sc.Text())
		}
		out = append(out, s*1000+ms)
	}
	return out, sc.Err()
}
