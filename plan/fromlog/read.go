// Package fromlog derives a surge plan from web server access logs: it reads
// nginx/Apache combined logs, JSON lines or CSV, groups paths into endpoint
// templates (numeric ids and UUIDs become {id}), measures each endpoint's
// rate per window and the traffic's burstiness, and writes a plan with one
// ramping-arrival-rate scenario per endpoint that reproduces the rate curve
// and the request mix.
package fromlog

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Log formats.
const (
	FormatCombined = "combined"
	FormatJSON     = "json"
	FormatCSV      = "csv"
)

// maxLineBytes bounds one log line.
const maxLineBytes = 1 << 20

// Record is one request read from a log.
type Record struct {
	Time   time.Time
	Method string
	// Path is the request path without its query string.
	Path   string
	Status int
	// Duration is the response time when the log has it (HasDuration),
	// else 0.
	Duration    time.Duration
	HasDuration bool
}

// Malformed is a line that could not be read; it is skipped.
type Malformed struct {
	Line int
	Err  error
}

func (m Malformed) String() string { return fmt.Sprintf("line %d: %v", m.Line, m.Err) }

// combinedRe matches the NCSA combined (and common) log format, with an
// optional trailing request time in seconds (nginx $request_time).
var combinedRe = regexp.MustCompile(`^\S+ \S+ \S+ \[([^\]]+)\] "([A-Z]+) (\S+)(?: [^"]*)?" (\d{3}) \S+(?: "(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*")?(?: (\d+(?:\.\d+)?))?`)

const combinedTime = "02/Jan/2006:15:04:05 -0700"

// Read reads every line of a log in the given format; empty lines and lines
// starting with '#' are ignored, unreadable lines are returned as Malformed
// with their line numbers. A CSV log may start with a header line.
func Read(r io.Reader, format string) ([]Record, []Malformed, error) {
	var parse func(string) (Record, error)
	switch format {
	case FormatCombined:
		parse = parseCombined
	case FormatJSON:
		parse = parseJSON
	case FormatCSV:
		parse = parseCSV
	default:
		return nil, nil, fmt.Errorf("format %q: want combined, json or csv", format)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	var recs []Record
	var bad []Malformed
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if format == FormatCSV && line == 1 && isCSVHeader(text) {
			continue
		}
		rec, err := parse(text)
		if err != nil {
			bad = append(bad, Malformed{Line: line, Err: err})
			continue
		}
		recs = append(recs, rec)
	}
	if err := sc.Err(); err != nil {
		return recs, bad, fmt.Errorf("read log: line %d: %w", line+1, err)
	}
	return recs, bad, nil
}

func parseCombined(s string) (Record, error) {
	m := combinedRe.FindStringSubmatch(s)
	if m == nil {
		return Record{}, errors.New("not in combined log format")
	}
	t, err := time.Parse(combinedTime, m[1])
	if err != nil {
		return Record{}, fmt.Errorf("time %q: %w", m[1], err)
	}
	status, _ := strconv.Atoi(m[4])
	rec := Record{Time: t, Method: m[2], Path: stripQuery(m[3]), Status: status}
	if m[5] != "" {
		secs, err := strconv.ParseFloat(m[5], 64)
		if err == nil {
			rec.Duration, rec.HasDuration = time.Duration(secs*float64(time.Second)), true
		}
	}
	return rec, checkRecord(rec)
}

// parseJSON reads one JSON object with the usual field names: time,
// timestamp, ts or @timestamp (RFC 3339 or Unix seconds/milliseconds);
// method; path, uri or url (or request: "GET /path HTTP/1.1"); status;
// duration_ms, or duration / request_time / latency in seconds.
func parseJSON(s string) (Record, error) {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return Record{}, fmt.Errorf("json: %w", err)
	}
	var rec Record
	var err error
	ts := first(m, "time", "timestamp", "ts", "@timestamp", "time_local")
	if ts == nil {
		return Record{}, errors.New("no time field")
	}
	if rec.Time, err = parseTimeValue(ts); err != nil {
		return Record{}, err
	}
	rec.Method, _ = first(m, "method", "request_method").(string)
	path, _ := first(m, "path", "uri", "url", "request_uri").(string)
	if req, ok := m["request"].(string); ok && (path == "" || rec.Method == "") {
		f := strings.Fields(req)
		if len(f) >= 2 {
			rec.Method, path = f[0], f[1]
		}
	}
	rec.Path = stripQuery(path)
	if st := first(m, "status", "status_code", "code"); st != nil {
		n, err := strconv.Atoi(fmt.Sprint(st))
		if err != nil {
			return Record{}, fmt.Errorf("status %v: not a number", st)
		}
		rec.Status = n
	}
	if d := first(m, "duration_ms"); d != nil {
		if v, err := strconv.ParseFloat(fmt.Sprint(d), 64); err == nil {
			rec.Duration, rec.HasDuration = time.Duration(v*float64(time.Millisecond)), true
		}
	} else if d := first(m, "duration", "request_time", "latency"); d != nil {
		var err error
		rec.Duration, err = parseDurationValue(fmt.Sprint(d))
		rec.HasDuration = err == nil
	}
	return rec, checkRecord(rec)
}

func first(m map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := m[k]; ok && v != nil {
			return v
		}
	}
	return nil
}

// isCSVHeader reports whether a CSV log's first line is a header (its first
// field is not a time).
func isCSVHeader(s string) bool {
	f, _, _ := strings.Cut(s, ",")
	_, err := parseTimeValue(strings.Trim(strings.TrimSpace(f), `"`))
	return err != nil
}

// parseCSV reads timestamp,method,path,status,duration (duration: a Go
// duration such as "12ms", or milliseconds as a number; may be empty).
func parseCSV(s string) (Record, error) {
	cr := csv.NewReader(strings.NewReader(s))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	f, err := cr.Read()
	if err != nil {
		return Record{}, fmt.Errorf("csv: %w", err)
	}
	if len(f) < 4 {
		return Record{}, fmt.Errorf("csv: %d fields, want timestamp,method,path,status,duration", len(f))
	}
	var rec Record
	if rec.Time, err = parseTimeValue(f[0]); err != nil {
		return Record{}, err
	}
	rec.Method, rec.Path = strings.TrimSpace(f[1]), stripQuery(strings.TrimSpace(f[2]))
	if rec.Status, err = strconv.Atoi(strings.TrimSpace(f[3])); err != nil {
		return Record{}, fmt.Errorf("status %q: not a number", f[3])
	}
	if len(f) > 4 && strings.TrimSpace(f[4]) != "" {
		d := strings.TrimSpace(f[4])
		if v, err := strconv.ParseFloat(d, 64); err == nil {
			rec.Duration = time.Duration(v * float64(time.Millisecond))
		} else if rec.Duration, err = time.ParseDuration(d); err != nil {
			return Record{}, fmt.Errorf("duration %q: want a Go duration or milliseconds", d)
		}
		rec.HasDuration = true
	}
	return rec, checkRecord(rec)
}

// parseTimeValue reads RFC 3339 text, the combined log's time, or a Unix
// time in seconds or milliseconds (by magnitude).
func parseTimeValue(v any) (time.Time, error) {
	s := strings.TrimSpace(fmt.Sprint(v))
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(combinedTime, s); err == nil {
		return t, nil
	}
	if x, err := strconv.ParseFloat(s, 64); err == nil && x > 0 && !math.IsInf(x, 0) {
		if x > 1e11 { // milliseconds
			return time.UnixMilli(0).Add(time.Duration(x * float64(time.Millisecond))), nil
		}
		return time.Unix(0, 0).Add(time.Duration(x * float64(time.Second))), nil
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 or Unix seconds/milliseconds", s)
}

// parseDurationValue reads a Go duration or seconds as a number.
func parseDurationValue(s string) (time.Duration, error) {
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(v * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

func stripQuery(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	// Absolute URIs in the request line: keep the path.
	if strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") {
		rest := p[strings.Index(p, "//")+2:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[i:]
		}
		return "/"
	}
	return p
}

func checkRecord(r Record) error {
	switch {
	case r.Method == "":
		return errors.New("no method")
	case !strings.HasPrefix(r.Path, "/"):
		return fmt.Errorf("path %q: want an absolute path", r.Path)
	case r.Status != 0 && (r.Status < 100 || r.Status > 599):
		return fmt.Errorf("status %d out of range", r.Status)
	}
	return nil
}

var (
	uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	hexRe  = regexp.MustCompile(`^[0-9a-fA-F]{16,}$`)
	numRe  = regexp.MustCompile(`^[0-9]+$`)
)

// Template collapses a path's ids: numeric segments, UUIDs and long hex
// strings (hashes, object ids) become {id}.
func Template(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if numRe.MatchString(s) || uuidRe.MatchString(s) || (hexRe.MatchString(s) && strings.ContainsAny(s, "0123456789")) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}
