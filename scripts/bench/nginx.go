package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func (e *env) startNginx() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr, err := e.startNginxConf("nginx", port, 2, 8192, false)
	e.nginxURL = "http://" + addr + "/"
	return err
}

// startNginxConf starts an nginx on 127.0.0.1:port with workers worker
// processes of conns connections each (SO_REUSEPORT spreads connections
// across workers when reuseport), keep-alive, a small fixed answer; it
// returns the address once nginx listens.
func (e *env) startNginxConf(name string, port, workers, conns int, reuseport bool) (string, error) {
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
}
`, dir, port, workers, min(conns, maxFDs-64), listenOpts)
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
