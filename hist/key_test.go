package hist

import (
	"testing"
)

func TestErrorName(t *testing.T) {
	for st, want := range map[string]string{
		"2xx": "", "3xx": "", "1xx": "", "4xx": "http_4xx", "5xx": "http_5xx",
		"timeout": "timeout", "refused": "refused", "reset": "reset", "tls": "tls", "dns": "dns",
		"protocol": "protocol", "blocked": "blocked", "other": "other",
	} {
		if got := ErrorName(st); got != want {
			t.Errorf("ErrorName(%q) = %q, want %q", st, got, want)
		}
	}
}
