package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/controller/report"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const goodPlan = `name: smoke
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: 10
    duration: 2s
    requests:
      - url: http://127.0.0.1:18080/
  users:
    executor: ramping-vus
    start_time: 1s
    stages:
      - {duration: 1s, target: 2}
      - {duration: 2s, target: 0}
    requests:
      - url: http://127.0.0.1:18080/users
`

const badPlan = `name: broken
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: -1
    duration: 2s
    bogus: 1
    requests:
      - url: http://127.0.0.1:18080/
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command line in-process, with env vars from vars.
func cli(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := execute(ctx, args, e)
	return result{code, out.String(), errb.String()}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

func TestValidate(t *testing.T) {
	good := writeFile(t, "good.yaml", goodPlan)
	r := cli(t, nil, "validate", good)
	if r.code != 0 || r.stdout != good+": ok (2 scenarios, total duration 4s)\n" {
		t.Errorf("good plan:\n%s", r)
	}

	bad := writeFile(t, "bad.yaml", badPlan)
	r = cli(t, nil, "validate", bad)
	if r.code != 1 || r.stdout != "" {
		t.Errorf("bad plan:\n%s", r)
	}
	for _, want := range []string{bad + ":7:5: scenarios.steady.bogus: unknown key"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("bad plan: stderr lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r.stderr, "surge:") {
		t.Errorf("plan errors are printed as they are, without a prefix:\n%s", r)
	}

	r = cli(t, nil, "validate", filepath.Join(t.TempDir(), "missing.yaml"))
	if r.code != 1 || !strings.Contains(r.stderr, "surge: read plan:") {
		t.Errorf("missing file:\n%s", r)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		help string // the command whose help the hint names
	}{
		{[]string{"validate"}, "surge validate"},
		{[]string{"validate", "a", "b"}, "surge validate"},
		{[]string{"run", "--no-such-flag", "x.yaml"}, "surge run"},
		{[]string{"bogus-command"}, "surge"},
		{[]string{"controller"}, "surge controller"}, // --data-dir is required
		{[]string{"agent", "--id", "a"}, "surge agent"},
		{[]string{"demo", "--duration", "-1s"}, "surge demo"},
		{[]string{"agents", "--controller", "127.0.0.1:1", "extra"}, "surge agents"},
		{[]string{"plan", "from-log", "--scale", "x", "a.log"}, "surge plan from-log"},
	} {
		r := cli(t, nil, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "Run '"+c.help+" --help' for usage.") {
			t.Errorf("%q: want exit 2 and a hint naming %s --help, got\n%s", c.args, c.help, r)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{withExitCode(exitThresholds, errors.New("thresholds")), 99},
		{fmt.Errorf("wrapped: %w", withExitCode(exitUsage, errors.New("usage"))), 2},
		{rpcErr("submit", "x", status.Error(codes.InvalidArgument, "bad")), 1},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestVerdictError(t *testing.T) {
	tests := []struct {
		status, verdict string
		want            int
	}{
		{"finished", "pass", 0},
		{"stopped", "pass", 0},
		{"finished", "fail", 99},
		{"aborted", "fail", 99},
		{"failed", "fail", 1},
		{"failed", "", 1},
		{"stopped", "fail", 1},
	}
	for _, tt := range tests {
		err := verdictError(summary(tt.status, tt.verdict, tt.verdict == "pass"))
		if got := exitCode(err); got != tt.want {
			t.Errorf("%s/%s: exit %d (%v), want %d", tt.status, tt.verdict, got, err, tt.want)
		}
	}
	err := verdictError(summary("finished", "fail", false))
	if want := "run r-1: thresholds failed: http_req_duration p(95)<500"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestRPCErrorHidesGRPCFraming(t *testing.T) {
	err := rpcErr("submit", "127.0.0.1:7070", status.Error(codes.InvalidArgument, "plan.yaml:1:1: empty plan"))
	if got := err.Error(); got != "submit: plan.yaml:1:1: empty plan" {
		t.Errorf("Error() = %q", got)
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("code = %s, want InvalidArgument", status.Code(err))
	}
	if !errors.Is(rpcErr("watch", "x", status.Error(codes.Canceled, "gone")), context.Canceled) {
		t.Error("a cancelled call is context.Canceled")
	}
}

func TestVersion(t *testing.T) {
	r := cli(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "surge ") {
		t.Errorf("version:\n%s", r)
	}
}

// readSummaryFile reads the summary JSON that --json wrote to path.
func readSummaryFile(t *testing.T, path string) *report.Summary {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := report.ParseJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
