package baseline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadCSV(t *testing.T) {
	rows, err := ReadCSV(strings.NewReader("# production, last hour\nrpm, endpoint,p50,p95,p99,error_rate,extra\n600,b,1,2,3,0.5,x\n60,a,10,20,30,0,y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Endpoint != "a" || rows[0].P99Ms != 30 || rows[1].Rpm != 600 || rows[1].ErrorRate != 0.5 {
		t.Errorf("rows %v", rows)
	}
	for _, tc := range []struct{ src, want string }{
		{"endpoint,p50,p95,p99,rpm\n", `line 1: missing column "error_rate"`},
		{"endpoint,p50,p95,p99,error_rate,rpm\na,1,2,x,0,1\n", `line 2: p99 "x": want a number >= 0`},
		{"endpoint,p50,p95,p99,error_rate,rpm\na,1,2,3,0,1\na,1,2,3,0,1\n", `line 3: endpoint "a" listed twice`},
		{"endpoint,p50,p95,p99,error_rate,rpm\na,1,2,3,2,1\n", "line 2: error_rate 2: want a fraction in [0, 1]"},
		{"endpoint,p50,p95,p99,error_rate,rpm\n,1,2,3,0,1\n", "line 2: empty endpoint"},
		{"endpoint,p50,p95,p99,error_rate,rpm\n", "no rows"},
	} {
		if _, err := ReadCSV(strings.NewReader(tc.src)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
	f := filepath.Join(t.TempDir(), "prod.csv")
	_ = os.WriteFile(f, []byte("endpoint,p50,p95,p99,error_rate,rpm\nall,1,2,3,0,1\n"), 0o644)
	if rows, err := CSVFile(f).Rows(context.Background()); err != nil || len(rows) != 1 {
		t.Errorf("CSVFile: %v %v", rows, err)
	}
	if _, err := CSVFile(f + ".none").Rows(context.Background()); err == nil || !strings.Contains(err.Error(), "baseline:") {
		t.Errorf("a missing file: %v", err)
	}
}
