package baseline

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Reader gives production's figures over some range: one row per endpoint
// (p50/p95/p99 in ms, error rate, requests per minute), "all" for the
// whole service. `surge compare` takes them from any Reader.
type Reader interface {
	Rows(ctx context.Context) ([]*surgev1.BaselineRow, error)
}

var (
	_ Reader = CSVFile("")
	_ Reader = (*Prometheus)(nil)
)

// CSVFile is a Reader of a CSV file of production figures (ReadCSV).
type CSVFile string

// Rows implements Reader.
func (f CSVFile) Rows(context.Context) ([]*surgev1.BaselineRow, error) {
	fh, err := os.Open(string(f))
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	defer fh.Close()
	rows, err := ReadCSV(fh)
	if err != nil {
		return nil, fmt.Errorf("baseline %s: %w", string(f), err)
	}
	return rows, nil
}

// csvColumns are the production CSV's columns, in any order.
var csvColumns = [...]string{"endpoint", "p50", "p95", "p99", "error_rate", "rpm"}

// ReadCSV reads production figures: a header naming the columns
// (endpoint,p50,p95,p99,error_rate,rpm; extra columns are ignored), then one
// row per endpoint. Errors name the line.
func ReadCSV(r io.Reader) ([]*surgev1.BaselineRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, c := range csvColumns {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("line 1: missing column %q (want %s)", c, strings.Join(csvColumns[:], ","))
		}
	}
	var rows []*surgev1.BaselineRow
	seen := map[string]bool{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < len(header) {
			return nil, fmt.Errorf("line %d: %d fields, want %d", line, len(rec), len(header))
		}
		num := func(name string) (float64, error) {
			s := strings.TrimSpace(rec[col[name]])
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v < 0 || v != v {
				return 0, fmt.Errorf("line %d: %s %q: want a number >= 0", line, name, s)
			}
			return v, nil
		}
		row := &surgev1.BaselineRow{Endpoint: strings.TrimSpace(rec[col["endpoint"]])}
		if row.Endpoint == "" {
			return nil, fmt.Errorf("line %d: empty endpoint", line)
		}
		if seen[row.Endpoint] {
			return nil, fmt.Errorf("line %d: endpoint %q listed twice", line, row.Endpoint)
		}
		seen[row.Endpoint] = true
		for _, f := range []struct {
			name string
			dst  *float64
		}{{"p50", &row.P50Ms}, {"p95", &row.P95Ms}, {"p99", &row.P99Ms}, {"error_rate", &row.ErrorRate}, {"rpm", &row.Rpm}} {
			if *f.dst, err = num(f.name); err != nil {
				return nil, err
			}
		}
		if row.ErrorRate > 1 {
			return nil, fmt.Errorf("line %d: error_rate %v: want a fraction in [0, 1]", line, row.ErrorRate)
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, errors.New("no rows")
	}
	slices.SortStableFunc(rows, func(a, b *surgev1.BaselineRow) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	return rows, nil
}
