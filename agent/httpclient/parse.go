package httpclient

import (
	"bytes"
	"net/http"
	"time"
)

// parseStatusLine parses "HTTP/1.x SSS reason".
func parseStatusLine(line []byte) (code int, http10, ok bool) {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return 0, false, false
	}
	switch line[7] {
	case '0':
		http10 = true
	case '1':
	default:
		return 0, false, false
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, false, false
		}
		code = code*10 + int(d-'0')
	}
	return code, http10, code >= 100
}

func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		switch {
		case d >= '0' && d <= '9':
			n = n<<4 | int64(d-'0')
		case d >= 'a' && d <= 'f':
			n = n<<4 | int64(d-'a'+10)
		case d >= 'A' && d <= 'F':
			n = n<<4 | int64(d-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// parseRetryAfter reads delta-seconds or an HTTP date.
func parseRetryAfter(b []byte) (time.Duration, bool) {
	if n, ok := parseDecimal(b); ok {
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(string(b))
	if err != nil {
		return 0, false
	}
	return max(time.Until(t), 0), true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold compares b with the lower-case ASCII s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

func hasSuffixFold(b []byte, s string) bool {
	return len(b) >= len(s) && equalFold(b[len(b)-len(s):], s)
}

// hasToken reports whether the comma-separated list b holds token.
func hasToken(b []byte, token string) bool {
	for len(b) > 0 {
		i := bytes.IndexByte(b, ',')
		var t []byte
		if i < 0 {
			t, b = b, nil
		} else {
			t, b = b[:i], b[i+1:]
		}
		if equalFold(trimOWS(t), token) {
			return true
		}
	}
	return false
}
