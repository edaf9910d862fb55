package controller

import (
	"strings"
	"testing"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

func TestRefusedNote(t *testing.T) {
	sum := func(requests, refused int64) *surgev1.RunSummary {
		return &surgev1.RunSummary{All: &surgev1.Stats{Requests: requests, Errors: map[string]int64{"refused": refused}}}
	}
	p := &plan.Plan{BaseURL: "http://127.0.0.1:8080"}
	got := refusedNote(sum(52, 52), p)
	if !strings.Contains(got, "52 of 52 requests were refused: nothing listened at the plan's base_url http://127.0.0.1:8080") ||
		!strings.Contains(got, "--base-url") {
		t.Errorf("all refused: %q", got)
	}
	for _, s := range []*surgev1.RunSummary{sum(100, 10), sum(100, 0), {}} {
		if got := refusedNote(s, p); got != "" {
			t.Errorf("%v: note %q, want none below half refused", s.GetAll(), got)
		}
	}
}
