package main

import (
	"strings"
	"testing"
)

// Bad remote-write flags are usage errors naming the flag, before the
// controller starts.
func TestPrometheusFlagErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--prometheus-classic-buckets", "0.1"}, "need --prometheus-remote-write"},
		{[]string{"--prometheus-remote-write", "ftp://x/api/v1/write"}, "want http(s)://host:port/path"},
		{[]string{"--prometheus-remote-write", "http://127.0.0.1:1/api/v1/write", "--prometheus-remote-write-header", "NoEquals"}, `--prometheus-remote-write-header "NoEquals": want NAME=VALUE`},
		{[]string{"--prometheus-remote-write", "http://127.0.0.1:1/api/v1/write", "--prometheus-classic-buckets", "0.5,0.1"}, "want increasing bounds > 0"},
		{[]string{"--prometheus-remote-write", "http://127.0.0.1:1/api/v1/write", "--prometheus-remote-write-ca", dir + "/none.pem"}, "--prometheus-remote-write-ca"},
	} {
		args := append([]string{"controller", "--data-dir", dir, "--listen", "127.0.0.1:0", "--gossip", "127.0.0.1:0"}, tc.args...)
		r := cli(t, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, r.code, exitUsage, tc.want, r.stderr)
		}
	}
}
