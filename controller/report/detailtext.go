package report

import (
	"strings"
)

// detailText writes the connections, HTTP phases, per-request and
// WebSocket tables, each only when the run has such data.
func detailText(p *printer, sum *Summary) {
	hasConns := func(c Connections) bool { return c.Opened > 0 || c.PeakOpen > 0 || c.Open > 0 }
	if hasConns(sum.Connections) {
		p.printf("\n")
		tw := p.table()
		tw.printf("CONNECTIONS\tOPENED\tCLOSED\tOPEN\tPEAK OPEN\n")
		row := func(name string, c Connections) {
			tw.printf("%s\t%d\t%d\t%d\t%d\n", name, c.Opened, c.Closed, c.Open, c.PeakOpen)
		}
		row("all", sum.Connections)
		for _, name := range sortedKeys(sum.Regions) {
			if c := sum.Regions[name].Connections; hasConns(c) {
				row("region "+name, c)
			}
		}
		for _, name := range sortedKeys(sum.Scenarios) {
			if c := sum.Scenarios[name].Connections; hasConns(c) {
				row("scenario "+name, c)
			}
		}
		tw.flush()
	}

	if len(sum.PhasesUS) > 0 {
		p.printf("\n")
		tw := p.table()
		tw.printf("HTTP PHASE\tP50 ms\tP95 ms\tP99 ms\tMAX ms\n")
		for _, name := range []string{"dns", "connect", "tls", "ttfb", "attempt"} {
			if l, ok := sum.PhasesUS[name]; ok {
				tw.printf("%s\t%s\t%s\t%s\t%s\n", name, ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max))
			}
		}
		tw.flush()
	}

	if len(sum.ByRequest) > 0 {
		p.printf("\n")
		tw := p.table()
		// The request column is the name thresholds and compare use.
		tw.printf("REQUEST\tSCENARIO\tFLOW\tREQUESTS\tFAILURES\tRPS\tP50 ms\tP95 ms\tP99 ms\tTTFB P95 ms\tRETRIES\tERRORS\n")
		for _, r := range sum.ByRequest {
			ttfb := "-"
			if l, ok := r.PhasesUS["ttfb"]; ok {
				ttfb = ms(l.P95)
			}
			l := r.LatencyUS
			tw.printf("%s\t%s\t%s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Request, r.Scenario, orDash(r.Flow),
				r.Requests, r.Failures, r.RPS,
				ms(l.P50), ms(l.P95), ms(l.P99), ttfb, r.Retries, errorList(r.Errors))
		}
		tw.flush()
	}

	if ws := sum.WebSocket; ws != nil {
		p.printf("\n")
		tw := p.table()
		tw.printf("WEBSOCKET\tOPENED\tCLOSED\tPEAK ACTIVE\tABNORMAL\tCONNECT FAILED\tRECONNECTS\tMSGS OUT\tMSGS IN\tMISSED\tCONNECT P95 ms\tRTT P50 ms\tRTT P99 ms\n")
		row := func(name string, w WSFigures) {
			tw.printf("%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", name, w.Sessions, w.SessionsClosed,
				w.SessionsPeakActive, w.AbnormalCloses, w.ConnectFailures, w.Reconnects, w.MessagesOut, w.MessagesIn,
				w.RepliesMissed, msOf(w.ConnectUS, 95), msOf(w.RoundTripUS, 50), msOf(w.RoundTripUS, 99))
		}
		row("all", ws.WSFigures)
		for _, w := range ws.Steps {
			row(strings.Join(nonEmpty(w.Scenario, w.Flow, w.Step), "/"), w.WSFigures)
		}
		tw.flush()
	}
}

func nonEmpty(ss ...string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// msOf formats percentile q (50, 95 or 99) of l in ms; "-" without data.
func msOf(l *Latency, q int) string {
	if l == nil {
		return "-"
	}
	switch q {
	case 50:
		return ms(l.P50)
	case 95:
		return ms(l.P95)
	case 99:
		return ms(l.P99)
	}
	return "-"
}
