package executor

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/surgeload/surge/agent/httpclient"
	"github.com/surgeload/surge/agent/wsclient"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

// wsStep is a compiled websocket step: the scenario's WebSocket client, the
// step, and the stats its sessions record into.
type wsStep struct {
	client *wsclient.Client
	step   *wsclient.Step
	stats  *wsclient.Stats
}

// compileWebSocket compiles a websocket step of the named flow. *client is
// the scenario's WebSocket client, made on the first step that needs it
// (dialling with o.WSDial: loopback only when nil).
func compileWebSocket(o *IterationOptions, flow string, w *plan.WebSocket, client **wsclient.Client) (compiledStep, error) {
	s, err := wsclient.Compile(w)
	if err != nil {
		return compiledStep{}, err
	}
	if *client == nil {
		*client = wsclient.New(wsclient.Options{Dial: o.WSDial, TLS: o.WSTLS, Now: o.Clock.Now})
	}
	return compiledStep{kind: stepWebSocket, ws: &wsStep{client: *client, step: s, stats: o.Rec.WebSocket(flow, s.Name())}}, nil
}

// webSocketTemplates returns the template texts of the scenario's
// websocket steps, for finding the feeders they read.
func webSocketTemplates(sc *plan.Scenario) []string {
	var out []string
	flows := slices.Collect(maps.Values(sc.FlowList()))
	for _, f := range append(flows, sc.OnStart, sc.OnStop) {
		if f == nil {
			continue
		}
		for _, st := range f.Steps {
			if st.WebSocket != nil {
				out = append(out, wsclient.Templates(st.WebSocket)...)
			}
		}
	}
	return out
}

// websocket holds one session of a websocket step and records it: every
// handshake as a request named after the step (status 1xx when the session
// opened, else the error's kind or the HTTP status class), the first one
// measured from intended when given (open model); the session's
// expect.count checks on the same series. False when ctx interrupted it.
func (it *iteration) websocket(ctx context.Context, flow string, ws *wsStep, v *httpclient.Vars, intended time.Time) bool {
	name := ws.step.Name()
	first := true
	res := ws.client.Run(ctx, ws.step, v, ws.stats, func(h wsclient.Handshake) {
		from := h.Start
		if first && !intended.IsZero() {
			from = intended
		}
		first = false
		cn := hist.Counters{Requests: 1}
		if h.Err != nil {
			cn.Failures = 1
		}
		it.o.Rec.RequestFlow(flow, name, h.Status, h.End.Sub(from), h.End.Sub(h.Start), cn)
	})
	if res.Interrupted {
		return false
	}
	if res.ChecksPassed+res.ChecksFailed > 0 {
		it.o.Rec.ChecksFlow(flow, name, res.Status, "expect.count", res.ChecksPassed, res.ChecksFailed)
	}
	return true
}
