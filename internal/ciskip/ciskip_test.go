package ciskip

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSkipf runs a child test that calls Skipf, with and without CI: it
// skips (exit 0, SKIP) without CI and fails (exit 1, FAIL) with it.
func TestSkipf(t *testing.T) {
	if os.Getenv("CISKIP_CHILD") == "1" {
		Skipf(t, "no %s here", "widget")
		t.Fatal("Skipf returned")
	}
	for _, tc := range []struct {
		ci, want string
		code     int
	}{{"", "--- SKIP", 0}, {"false", "--- SKIP", 0}, {"true", "--- FAIL", 1}, {"1", "--- FAIL", 1}} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestSkipf$", "-test.v")
		cmd.Env = append(os.Environ(), "CISKIP_CHILD=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "no widget here") {
			t.Errorf("CI=%q: exit %d, want %d with %q and the reason:\n%s", tc.ci, code, tc.code, tc.want, out)
		}
	}
}
