// Package ciskip skips a test whose service, tool or privilege is missing,
// except under CI (CI=true), where a missing prerequisite fails the test:
// CI must run every test, so nothing there may pass by not running.
package ciskip

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// Skipf skips t with the reason, or fails it when CI is set.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI=true: a test may not skip: %s", reason)
	}
	t.Skip("SKIPPED: " + reason)
}

// InCI reports whether CI is set to a true value (CI=true, CI=1).
func InCI() bool {
	ok, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ok
}
