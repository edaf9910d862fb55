package executor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/plan"
)

// BenchmarkExtraction is BenchmarkIteration's iteration/seq with the
// request's extraction varied: none (the cost every plain flow pays, which
// must stay BenchmarkIteration's), a JSON path and a regex, against a
// loopback server answering a 2 KiB JSON body whose value sits in the
// middle:
//
//	go test -run '^$' -bench Extraction -benchmem ./agent/executor/
func BenchmarkExtraction(b *testing.B) {
	pad := strings.Repeat(`{"k": "vvvvvvvvvvvvvvvvvvvv", "n": [1, 2, 3]}, `, 20)
	url := loopbackReply(b, "application/json", `{"items": [`+pad+`{}], "user": {"id": 9001, "name": "ada"}, "more": [`+pad+`{}]}`)
	for _, tc := range []struct{ name, extract string }{
		{"none", ""},
		{"json", `, extract: {id: {json: "$.user.id"}}`},
		{"regex", `, extract: {id: {regex: '"id": (\d+)'}}`},
	} {
		p, err := plan.Parse("bench.yaml", []byte(`
scenarios:
  s:
    executor: constant-vus
    vus: 1
    duration: 1m
    requests: [{name: get, url: "`+url+`"`+tc.extract+`}]
`))
		if err != nil {
			b.Fatal(err)
		}
		c := newBenchClient(b)
		it, err := PlanIteration(p.Scenarios["s"], IterationOptions{Client: c, Rec: NewRecorder().Scenario("s")})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if !it(ctx, 1, time.Now()) {
					b.Fatal("iteration failed")
				}
			}
		})
	}
}
