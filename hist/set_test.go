package hist

import (
	"testing"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

func TestSetMergeAndProto(t *testing.T) {
	a, b := NewSet(), NewSet()
	k1 := Key{Scenario: "s", Request: "GET /", Status: "2xx"}
	k2 := Key{Scenario: "s", Request: "GET /", Status: "5xx"}
	for i := int64(1); i <= 100; i++ {
		sa := a.Get(k1)
		sa.Counters.Requests++
		_ = sa.Latency.RecordValue(i)
		sb := b.Get(k2)
		sb.Counters.Requests++
		sb.Counters.Failures++
		_ = sb.Latency.RecordValue(i * 10)
	}
	ps := append(a.ToProto(), b.ToProto()...)
	if err := ValidateProto(ps, 10); err != nil {
		t.Fatal(err)
	}
	if err := ValidateProto(ps, 1); err == nil {
		t.Fatal("series limit not enforced")
	}
	m := NewSet()
	if _, err := m.MergeProto(ps); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 2 {
		t.Fatalf("keys %v", m.Keys())
	}
	tot := m.Total(nil)
	if tot.Counters.Requests != 200 || tot.Counters.Failures != 100 || tot.Latency.TotalCount() != 200 {
		t.Fatalf("total %+v", tot.Counters)
	}
	fails := m.Total(func(k Key) bool { return k.Status == "5xx" })
	if fails.Latency.Min() != 10 {
		t.Fatalf("filtered min %d", fails.Latency.Min())
	}
	bad := []*surgev1.Series{{Key: &surgev1.SeriesKey{}, Counters: &surgev1.Counters{Requests: 1, Failures: 2}}}
	if err := ValidateProto(bad, 10); err == nil {
		t.Fatal("failures > requests accepted")
	}
}
