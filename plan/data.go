package plan

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Feeder modes: which row an iteration reads.
const (
	// FeedSequential walks the rows in order, one row per iteration, shared
	// by all VUs of a scenario on an agent (the default).
	FeedSequential = "sequential"
	// FeedRandom picks a row at random from the VU's seeded random stream.
	FeedRandom = "random"
	// FeedUniquePerVU gives each VU one row for all its iterations.
	FeedUniquePerVU = "unique-per-vu"
)

// Feeder is a table of test data read by templates with
// {{data "NAME" "column"}}. In a plan file it names a CSV or JSON File
// (relative to the plan file), which `surge run` reads and ships with the
// plan as Inline rows; a plan may also give Inline directly.
type Feeder struct {
	File string `yaml:"file,omitempty" json:"file,omitempty"`
	// Mode is sequential (default), random or unique-per-vu.
	Mode   string      `yaml:"mode,omitempty" json:"mode,omitempty"`
	Inline *FeederRows `yaml:"inline,omitempty" json:"inline,omitempty"`
}

// FeederRows are a feeder's columns and rows; every row has one value per
// column.
type FeederRows struct {
	Columns []string   `yaml:"columns" json:"columns"`
	Rows    [][]string `yaml:"rows" json:"rows"`
}

// Column returns the index of column name, or -1.
func (r *FeederRows) Column(name string) int {
	if r == nil {
		return -1
	}
	for i, c := range r.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

var feederNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// checkData validates the feeders and every {{data}} reference of the
// plan's requests: the feeder must exist and, when its rows are known, have
// the column.
func checkData(l *errorList, p *Plan) {
	for _, name := range sortedKeys(p.Data) {
		fp := joinPath("data", name)
		f := p.Data[name]
		if f == nil {
			l.add(fp, "must be a mapping {file, mode} or {inline, mode}")
			continue
		}
		if !feederNameRE.MatchString(name) {
			l.addKey(fp, "feeder name must be letters, digits, '_', '-' or '.', got %q", name)
		}
		if f.Mode == "" {
			f.Mode = FeedSequential
		}
		switch f.Mode {
		case FeedSequential, FeedRandom, FeedUniquePerVU:
		default:
			l.add(joinPath(fp, "mode"), "unknown mode %q (valid: %s, %s, %s)", f.Mode, FeedSequential, FeedRandom, FeedUniquePerVU)
		}
		switch {
		case f.File == "" && f.Inline == nil:
			l.add(fp, "give file (a CSV or JSON file) or inline rows")
		case f.File != "" && f.Inline != nil:
			l.addKey(joinPath(fp, "inline"), "give file or inline, not both")
		case f.Inline != nil:
			checkRows(l, joinPath(fp, "inline"), f.Inline)
		}
	}
	for _, name := range p.ScenarioNames() {
		s := p.Scenarios[name]
		if s == nil {
			continue
		}
		s.eachRequest(joinPath("scenarios", name), func(path string, r *Request) { checkDataRefs(l, p, path, r) })
	}
}

func checkRows(l *errorList, path string, r *FeederRows) {
	cp := joinPath(path, "columns")
	if len(r.Columns) == 0 {
		l.add(cp, "at least one column is required")
	}
	seen := map[string]bool{}
	for i, c := range r.Columns {
		switch {
		case c == "":
			l.add(indexPath(cp, i), "column name must not be empty")
		case seen[c]:
			l.add(indexPath(cp, i), "duplicate column %q", c)
		}
		seen[c] = true
	}
	if len(r.Rows) == 0 {
		l.add(joinPath(path, "rows"), "at least one row is required")
	}
	for i, row := range r.Rows {
		if len(row) != len(r.Columns) {
			l.add(indexPath(joinPath(path, "rows"), i), "has %d values, want one per column (%d)", len(row), len(r.Columns))
		}
	}
}

// checkDataRefs checks the {{data}} calls of a request's templates.
func checkDataRefs(l *errorList, p *Plan, path string, r *Request) {
	check := func(vp, s string) {
		parts, err := ParseTemplate(s)
		if err != nil {
			return // reported by checkRequest
		}
		for _, pt := range parts {
			if pt.Func != "data" {
				continue
			}
			f := p.Data[pt.Args[0]]
			switch {
			case f == nil:
				l.add(vp, "template: unknown feeder %q (declare it under data)", pt.Args[0])
			case f.Inline != nil && f.Inline.Column(pt.Args[1]) < 0:
				l.add(vp, "template: feeder %q has no column %q (columns: %s)", pt.Args[0], pt.Args[1], strings.Join(f.Inline.Columns, ", "))
			}
		}
	}
	for _, t := range requestTemplates(path, r) {
		check(t.path, t.text)
	}
}

// uninlined reports the feeders whose file was not read into rows.
func (p *Plan) uninlined() error {
	for _, name := range sortedKeys(p.Data) {
		if f := p.Data[name]; f != nil && f.Inline == nil {
			return fmt.Errorf("data.%s: file %s was not shipped with the plan (surge run reads data files and inlines their rows)", name, f.File)
		}
	}
	return nil
}

// ParseWithData is Parse for a plan file on disk: it also reads each
// feeder's file (CSV or JSON, relative to baseDir, normally the plan file's
// directory) and validates the data and every {{data}} reference. It
// returns the plan and the plan's YAML with each `file:` replaced by the
// file's `inline:` rows, to submit to a controller (which cannot read the
// files). A missing or unreadable file is an error at the `file:` key; a
// malformed file is an error at the data file's line.
func ParseWithData(file string, src []byte, baseDir string) (*Plan, []byte, error) {
	return ParseFile(file, src, Options{BaseDir: baseDir})
}

// loadData reads each feeder's file, relative to baseDir, into its rows.
func loadData(file string, p *Plan, ps *positions, baseDir string) error {
	l := &errorList{file: file, pos: ps}
	for _, name := range sortedKeys(p.Data) {
		f := p.Data[name]
		if f == nil || f.File == "" || f.Inline != nil {
			continue
		}
		path := filepath.Join(baseDir, f.File)
		rows, err := readData(path)
		var pe *Error
		switch {
		case errors.As(err, &pe):
			l.errs = append(l.errs, err)
		case err != nil:
			l.addKey(joinPath(joinPath("data", name), "file"), "%v", err)
		default:
			f.File, f.Inline = "", rows // as the inlined YAML has it
		}
	}
	return l.err()
}

// readData reads a CSV file (header row, then rows) or a JSON file (an
// array of flat objects), chosen by the .json extension.
func readData(path string) (*FeederRows, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read data file: %w", err)
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		return readJSONData(path, b)
	}
	return readCSVData(path, b)
}

func readCSVData(path string, b []byte) (*FeederRows, error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.ReuseRecord = false
	head, err := r.Read()
	if err != nil {
		return nil, csvError(path, err)
	}
	rows := &FeederRows{Columns: head}
	seen := map[string]bool{}
	for i, c := range head {
		if c == "" || seen[c] {
			return nil, &Error{File: path, Line: 1, Msg: fmt.Sprintf("column %d: empty or duplicate column name %q", i+1, c)}
		}
		seen[c] = true
	}
	for {
		rec, err := r.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, csvError(path, err)
		}
		rows.Rows = append(rows.Rows, rec)
	}
	if len(rows.Rows) == 0 {
		return nil, &Error{File: path, Line: 1, Msg: "no rows after the header"}
	}
	return rows, nil
}

func csvError(path string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &Error{File: path, Line: pe.Line, Col: pe.Column, Msg: "invalid CSV: " + pe.Err.Error()}
	}
	if errors.Is(err, io.EOF) {
		return &Error{File: path, Line: 1, Msg: "empty CSV: want a header row and rows"}
	}
	return &Error{File: path, Msg: "invalid CSV: " + err.Error()}
}

func readJSONData(path string, b []byte) (*FeederRows, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var objs []map[string]any
	if err := dec.Decode(&objs); err != nil {
		line := 0
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			line = 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
		case errors.As(err, &te):
			line = 1 + bytes.Count(b[:min(int(te.Offset), len(b))], []byte("\n"))
		}
		return nil, &Error{File: path, Line: line, Msg: "invalid JSON data: want an array of flat objects: " + err.Error()}
	}
	if len(objs) == 0 {
		return nil, &Error{File: path, Msg: "no rows: want a non-empty array of flat objects"}
	}
	keys := map[string]bool{}
	for _, o := range objs {
		for k := range o {
			keys[k] = true
		}
	}
	rows := &FeederRows{Columns: sortedKeys(keys)}
	for i, o := range objs {
		row := make([]string, len(rows.Columns))
		for j, c := range rows.Columns {
			v, ok := o[c]
			if !ok {
				return nil, &Error{File: path, Msg: fmt.Sprintf("element %d: no key %q (every object needs every column)", i, c)}
			}
			switch v := v.(type) {
			case nil:
			case string:
				row[j] = v
			case json.Number:
				row[j] = v.String()
			case bool:
				row[j] = strconv.FormatBool(v)
			default:
				return nil, &Error{File: path, Msg: fmt.Sprintf("element %d: key %q: want a string, number, boolean or null, got a nested value", i, c)}
			}
		}
		rows.Rows = append(rows.Rows, row)
	}
	return rows, nil
}

// hasInline reports whether a feeder of p has rows (read from its file, or
// written inline).
func hasInline(p *Plan) bool {
	for _, f := range p.Data {
		if f != nil && f.Inline != nil {
			return true
		}
	}
	return false
}

// inlineYAML rewrites the plan mapping doc with every read feeder's
// `file: X` key replaced by `inline: {columns: [...], rows: [...]}` (flow
// style) from p.
func inlineYAML(doc *yaml.Node, p *Plan) error {
	if !hasInline(p) {
		return nil
	}
	data := mapValue(doc, "data")
	if data == nil || data.Kind != yaml.MappingNode {
		return errors.New("no data mapping")
	}
	for i := 0; i+1 < len(data.Content); i += 2 {
		f := p.Data[data.Content[i].Value]
		fn := data.Content[i+1]
		if fn.Kind == yaml.AliasNode && fn.Alias != nil {
			fn = fn.Alias
		}
		if f == nil || f.Inline == nil || fn.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(fn.Content); j += 2 {
			if fn.Content[j].Value != "file" {
				continue
			}
			var v yaml.Node
			if err := v.Encode(f.Inline); err != nil {
				return fmt.Errorf("encode rows: %w", err)
			}
			setFlow(&v)
			fn.Content[j] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "inline"}
			fn.Content[j+1] = &v
		}
	}
	return nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func setFlow(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = yaml.FlowStyle
	}
	for _, c := range n.Content {
		setFlow(c)
	}
}

// FeederRow picks the row index an iteration reads from a feeder of n rows
// in mode: seq is the scenario's iteration count on this agent (from 0),
// vu the VU number (from 1), offset the agent's starting row and rnd a
// random draw in [0, n). See docs/plan-reference.md.
func FeederRow(mode string, n int, seq uint64, vu int64, offset int, rnd int) int {
	if n <= 0 {
		return 0
	}
	switch mode {
	case FeedRandom:
		return rnd
	case FeedUniquePerVU:
		return int((uint64(offset) + uint64(max(vu-1, 0))) % uint64(n))
	}
	return int((uint64(offset) + seq) % uint64(n))
}
