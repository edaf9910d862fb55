package cluster

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
)

// newMemberlistLogger adapts l to the *log.Logger memberlist wants, mapping
// memberlist's "[DEBUG]", "[INFO]", "[WARN]", "[ERR]" prefixes to slog levels.
// A nil l discards everything.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	if l == nil {
		return log.New(io.Discard, "", 0)
	}
	return log.New(slogWriter{l: l}, "", 0)
}

type slogWriter struct {
	l *slog.Logger
}

func (w slogWriter) Write(p []byte) (int, error) {
	msg := bytes.TrimSpace(p)
	level := slog.LevelInfo
	if len(msg) > 0 && msg[0] == '[' {
		if end := bytes.IndexByte(msg, ']'); end > 0 {
			known := true
			switch string(msg[1:end]) {
			case "DEBUG":
				level = slog.LevelDebug
			case "INFO":
				level = slog.LevelInfo
			case "WARN":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			default:
				known = false
			}
			if known {
				msg = bytes.TrimSpace(msg[end+1:])
			}
		}
	}
	// memberlist's own socket closed under a gossip or probe in flight: that
	// is this node shutting down, not a fault worth an error line.
	if level > slog.LevelDebug && bytes.Contains(msg, []byte("use of closed network connection")) {
		level = slog.LevelDebug
	}
	w.l.Log(context.Background(), level, string(msg), slog.String("component", "memberlist"))
	return len(p), nil
}
