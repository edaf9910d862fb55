package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// canaryOptions are `surge canary`'s flags.
type canaryOptions struct {
	listen, plans, controller, token, logLevel string
	auth                                       *clientAuth
	parallel                                   int
}

func newCanaryCmd(e env) *cobra.Command {
	var o canaryOptions
	cmd := &cobra.Command{
		Use:   "canary --plans DIR",
		Short: "Serve canary gates: an Argo Rollouts web metric and a Flagger webhook that run a named plan against the canary",
		Long: `Canary serves an HTTP API that progressive-delivery controllers call to
gate a canary on a load test: each call runs the plan NAME (DIR/NAME.yaml)
against the canary's base URL on the cluster's controller and answers with
the run's verdict.

  GET  /argo?plan=NAME&base_url=URL   Argo Rollouts web metric: 200 and JSON
                                      {"verdict": "pass"|"fail", ...}; use
                                      successCondition: result.verdict == "pass"
  POST /flagger                       Flagger webhook: the canary payload, with
                                      metadata plan, base_url (and token);
                                      200 on pass, 412 on fail

A bad request (unknown plan, bad base URL) is 400 or 404, a missing token 401.
See docs/canary.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.token == "" {
				o.token = e.getenv("SURGE_CANARY_TOKEN")
			}
			return runCanary(cmd.Context(), o, e.stderr)
		},
	}
	o.auth = controllerFlag(cmd, e, &o.controller)
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8090", "HTTP `ADDR` to serve the gates on")
	f.StringVar(&o.plans, "plans", "", "`DIR` of the plans a gate may run (NAME.yaml); required")
	f.StringVar(&o.token, "api-token", "", "bearer `TOKEN` callers must present (header, or Flagger's metadata token); default $SURGE_CANARY_TOKEN")
	f.IntVar(&o.parallel, "parallel", 4, "gates running at once; more are answered 429")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	_ = cmd.MarkFlagRequired("plans")
	return cmd
}

// runCanary is `surge canary`: it serves until ctx ends.
func runCanary(ctx context.Context, o canaryOptions, stderr io.Writer) error {
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	if st, err := os.Stat(o.plans); err != nil || !st.IsDir() {
		return usageErrorf("--plans %q: want a directory of plans", o.plans)
	}
	conn, err := dialAuth(o.controller, o.auth)
	if err != nil {
		return err
	}
	defer conn.Close()
	g := &canaryGates{plans: o.plans, token: o.token, runs: runsClient{surgev1.NewRunsClient(conn), o.controller},
		slots: make(chan struct{}, max(o.parallel, 1)), log: log}
	lis, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("canary: listen: %w", err)
	}
	srv := &http.Server{Handler: g.mux(), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	log.Info("canary gates serving", slog.String("addr", lis.Addr().String()), slog.String("plans", o.plans))
	select {
	case <-ctx.Done():
	case err := <-done:
		return fmt.Errorf("canary: serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("canary: serve: %w", err)
	}
	return nil
}

// canaryGates run plans for the gates' callers.
type canaryGates struct {
	plans, token string
	runs         runsClient
	slots        chan struct{}
	log          *slog.Logger
}

func (g *canaryGates) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /argo", g.argo)
	m.HandleFunc("POST /flagger", g.flagger)
	return m
}

// gateError is a refusal with its HTTP status.
type gateError struct {
	code int
	msg  string
}

func (e *gateError) Error() string { return e.msg }

// argo answers an Argo Rollouts web metric: always 200 with the verdict
// when the run ran (the AnalysisTemplate's successCondition judges it).
func (g *canaryGates) argo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sum, err := g.gate(r.Context(), bearerToken(r), q.Get("plan"), q.Get("base_url"), map[string]string{"canary": "argo"})
	g.answer(w, sum, err, http.StatusOK)
}

// flaggerPayload is Flagger's webhook body (CanaryWebhookPayload).
type flaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata"`
}

// flagger answers a Flagger webhook: 200 lets the canary go on, any other
// status halts it (412 when the run failed).
func (g *canaryGates) flagger(w http.ResponseWriter, r *http.Request) {
	var p flaggerPayload
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p); err != nil {
		g.answer(w, nil, &gateError{http.StatusBadRequest, "flagger payload: " + err.Error()}, 0)
		return
	}
	token := bearerToken(r)
	if token == "" {
		token = p.Metadata["token"]
	}
	tags := map[string]string{"canary": "flagger"}
	if p.Name != "" {
		tags["canary_name"] = p.Name
	}
	sum, err := g.gate(r.Context(), token, p.Metadata["plan"], p.Metadata["base_url"], tags)
	g.answer(w, sum, err, http.StatusPreconditionFailed)
}

var gatePlanName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// gate checks a call and runs its plan against base, returning the final
// summary.
func (g *canaryGates) gate(ctx context.Context, token, name, base string, tags map[string]string) (*surgev1.RunSummary, error) {
	if g.token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(g.token)) != 1 {
		return nil, &gateError{http.StatusUnauthorized, "a valid token is required (Authorization: Bearer, or Flagger's metadata token)"}
	}
	if !gatePlanName.MatchString(name) {
		return nil, &gateError{http.StatusBadRequest, fmt.Sprintf("plan %q: want the name of a plan in the gates' directory (letters, digits, . _ -)", name)}
	}
	file := filepath.Join(g.plans, name+".yaml")
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, &gateError{http.StatusNotFound, fmt.Sprintf("plan %q: no %s", name, filepath.Base(file))}
	}
	if base != "" {
		if err := plan.CheckBaseURL(base); err != nil {
			return nil, &gateError{http.StatusBadRequest, fmt.Sprintf("base_url %q: %v", base, err)}
		}
	}
	_, src, err = plan.ParseFile(file, src, plan.Options{BaseDir: g.plans, BaseURL: base})
	if err != nil {
		return nil, &gateError{http.StatusBadRequest, err.Error()}
	}
	select {
	case g.slots <- struct{}{}:
		defer func() { <-g.slots }()
	default:
		return nil, &gateError{http.StatusTooManyRequests, fmt.Sprintf("%d gates are running; try again later", cap(g.slots))}
	}
	tags["environment"] = "canary"
	sctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	resp, err := g.runs.Submit(sctx, &surgev1.SubmitRequest{PlanYaml: src, FileName: filepath.Base(file), Tags: tags})
	cancel()
	if err != nil {
		return nil, &gateError{http.StatusBadGateway, rpcErr("submit", g.runs.addr, err).Error()}
	}
	g.log.Info("canary gate running", slog.String("plan", name), slog.String("run", resp.GetRunId()), slog.String("base_url", base))
	sum, err := watch(ctx, g.runs, resp.GetRunId(), func(*surgev1.Progress) {}, io.Discard)
	if err != nil {
		return nil, &gateError{http.StatusBadGateway, err.Error()}
	}
	return sum, nil
}

// gateAnswer is the JSON a gate answers with.
type gateAnswer struct {
	Verdict    string   `json:"verdict"`
	RunID      string   `json:"run_id,omitempty"`
	Status     string   `json:"status,omitempty"`
	Requests   int64    `json:"requests"`
	Failures   int64    `json:"failures"`
	Thresholds []string `json:"thresholds"`
	Error      string   `json:"error,omitempty"`
}

// answer writes the gate's JSON: 200 on pass, failCode on a run that did
// not pass, the refusal's status on an error.
func (g *canaryGates) answer(w http.ResponseWriter, sum *surgev1.RunSummary, err error, failCode int) {
	a := gateAnswer{Verdict: "fail", Thresholds: []string{}}
	code := failCode
	var ge *gateError
	switch {
	case errors.As(err, &ge):
		a.Error, code = ge.msg, ge.code
	case sum != nil:
		a.Verdict, a.RunID, a.Status, a.Error = sum.GetVerdict(), sum.GetRunId(), sum.GetStatus(), sum.GetError()
		a.Requests, a.Failures = sum.GetAll().GetRequests(), sum.GetAll().GetFailures()
		for _, t := range sum.GetThresholds() {
			mark := "pass"
			if !t.GetOk() {
				mark = "fail"
			}
			a.Thresholds = append(a.Thresholds, fmt.Sprintf("%s %s: %s (%g)", t.GetMetric(), t.GetExpr(), mark, t.GetValue()))
		}
		if a.Verdict == "pass" {
			code = http.StatusOK
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(a)
}

// bearerToken is the request's bearer token, or "".
func bearerToken(r *http.Request) string {
	const p = "Bearer "
	if h := r.Header.Get("Authorization"); len(h) > len(p) && h[:len(p)] == p {
		return h[len(p):]
	}
	return ""
}
