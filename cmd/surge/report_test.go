package main

import (
	"bytes"
	"testing"

	"github.com/surgeload/surge/controller/report"
)

func TestReport(t *testing.T) {
	f := &fakeController{summary: summary("finished", "pass", true)}
	addr := f.start(t)
	r := cli(t, nil, "report", "r-1", "--controller", addr)
	var want bytes.Buffer
	if err := report.Text(&want, f.summary); err != nil {
		t.Fatal(err)
	}
	if r.code != 0 || r.stdout != want.String() {
		t.Errorf("text report:\n%s", r)
	}
	r = cli(t, nil, "report", "r-1", "--json", "--controller", addr)
	if s, err := report.ParseJSON([]byte(r.stdout)); r.code != 0 || err != nil || s.RunID != "r-1" {
		t.Errorf("json report (%v):\n%s", err, r)
	}
	r = cli(t, nil, "report", "r-404", "--controller", addr)
	if r.code != 1 || r.stderr != "surge: report r-404: run \"r-404\" not found\n" {
		t.Errorf("unknown run:\n%s", r)
	}
}
