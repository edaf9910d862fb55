package agent

import (
	"math/big"
	"reflect"
	"strings"
	"testing"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// Every field of a wire share reaches the executor's share; a segment
// that is not a fraction is refused, naming the scenario.
func TestShareFromProto(t *testing.T) {
	got, err := shareFromProto([]*surgev1.ScenarioShare{
		{Scenario: "a", SegmentFrom: "1/3", SegmentTo: "2/3", Arrivals: 7, TotalArrivals: 21, PreAllocatedVus: 2, MaxVus: 9},
		{Scenario: "b", Vus: 4, StageTargets: []int64{0, 4, 1}},
		{Scenario: "c", Arrivals: 10, TotalArrivals: 30, ArrivalFirst: 3, ArrivalStride: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := plan.Share{Scenarios: []plan.ScenarioShare{
		{Scenario: "a", From: big.NewRat(1, 3), To: big.NewRat(2, 3), Arrivals: 7, TotalArrivals: 21, PreAllocVUs: 2, MaxVUs: 9},
		{Scenario: "b", VUs: 4, StageTargets: []int64{0, 4, 1}},
		{Scenario: "c", Arrivals: 10, TotalArrivals: 30, ArrivalFirst: 3, ArrivalStride: 2},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("share\n got %+v\nwant %+v", got, want)
	}
	if s := got.Scenarios[0].SegmentFrom(); s != "1/3" {
		t.Errorf("segment from %q, want the wire's 1/3 (it seeds the scenario)", s)
	}
	_, err = shareFromProto([]*surgev1.ScenarioShare{{Scenario: "a", SegmentFrom: "x"}})
	if err == nil || !strings.Contains(err.Error(), `scenario "a": segment_from: "x" is not a fraction`) {
		t.Errorf("bad segment: %v", err)
	}
}
