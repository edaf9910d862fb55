package fromlog

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/surgeload/surge/plan"
)

// Options shape the derived plan.
type Options struct {
	// Window is the width of the rate curve's steps; default 1m.
	Window time.Duration
	// Scale multiplies every rate (0.1: a tenth of production); default 1.
	Scale float64
	// Speedup compresses time: the plan runs each window in Window/Speedup
	// with the same (scaled) number of requests; default 1.
	Speedup float64
	// Regions are the plan's region weights; empty: none.
	Regions map[string]float64
	// Target is the plan's base_url, which completes its request paths;
	// default http://127.0.0.1:8080 (surge target's default).
	Target string
	// Name is the plan's name; default "from-log".
	Name string
}

// Default values for Options.
const (
	DefaultWindow = time.Minute
	DefaultTarget = "http://127.0.0.1:8080"
	DefaultName   = "from-log"
)

func (o Options) normalized() (Options, error) {
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Scale == 0 {
		o.Scale = 1
	}
	if o.Speedup == 0 {
		o.Speedup = 1
	}
	if o.Target == "" {
		o.Target = DefaultTarget
	}
	o.Target = strings.TrimRight(o.Target, "/")
	if o.Name == "" {
		o.Name = DefaultName
	}
	if err := plan.CheckBaseURL(o.Target); err != nil {
		return o, fmt.Errorf("target %q: %w", o.Target, err)
	}
	switch {
	case o.Window < time.Millisecond:
		return o, fmt.Errorf("window %s: must be at least 1ms", o.Window)
	case !(o.Scale > 0) || math.IsInf(o.Scale, 0):
		return o, fmt.Errorf("scale %v: must be > 0", o.Scale)
	case !(o.Speedup > 0) || math.IsInf(o.Speedup, 0):
		return o, fmt.Errorf("speedup %v: must be > 0", o.Speedup)
	case time.Duration(float64(o.Window)/o.Speedup) < time.Millisecond:
		return o, fmt.Errorf("window %s / speedup %v is under 1ms", o.Window, o.Speedup)
	}
	for name, w := range o.Regions {
		if name == "" || !(w > 0) {
			return o, fmt.Errorf("region %q weight %v: want a name and a weight > 0", name, w)
		}
	}
	return o, nil
}

// Endpoint is one method and path template's traffic.
type Endpoint struct {
	Method   string
	Template string
	// Sample is the first concrete path seen, used as the request's URL.
	Sample string
	Count  int
	// Share is Count over all requests.
	Share float64
	// PerWindow counts the endpoint's requests in each window.
	PerWindow []int
	// PeakToMean is the busiest window's count over the mean per window.
	PeakToMean float64
	// InterArrivalCV is the coefficient of variation of the times between
	// consecutive requests (1 for Poisson traffic, > 1 bursty, < 1 regular).
	InterArrivalCV float64
	// Errors counts 5xx responses.
	Errors int
	// Failures counts responses of 400 and above, as a run counts
	// failures, for the baseline's error rate.
	Failures int
	// Durations are the response times of the requests whose log line has
	// one, for the baseline's percentiles.
	Durations []time.Duration
}

// Name is the endpoint's request name: "GET /api/users/{id}".
func (e *Endpoint) Name() string { return e.Method + " " + e.Template }

// Profile is the traffic a log shows.
type Profile struct {
	Start     time.Time
	Window    time.Duration
	Total     int
	Endpoints []*Endpoint // busiest first
	// PerWindow counts all requests in each window.
	PerWindow      []int
	PeakWindow     int
	PeakToMean     float64
	InterArrivalCV float64
}

// Analyze measures the records' traffic per window and endpoint.
func Analyze(recs []Record, window time.Duration) (*Profile, error) {
	if len(recs) == 0 {
		return nil, errors.New("no requests in the log")
	}
	if window <= 0 {
		window = DefaultWindow
	}
	start := recs[0].Time
	end := recs[0].Time
	for _, r := range recs {
		if r.Time.Before(start) {
			start = r.Time
		}
		if r.Time.After(end) {
			end = r.Time
		}
	}
	start = start.Truncate(window)
	n := int(end.Sub(start)/window) + 1
	p := &Profile{Start: start, Window: window, Total: len(recs), PerWindow: make([]int, n)}
	byKey := map[string]*Endpoint{}
	times := map[string][]time.Time{}
	all := make([]time.Time, 0, len(recs))
	for _, r := range recs {
		tmpl := Template(r.Path)
		key := r.Method + " " + tmpl
		e, ok := byKey[key]
		if !ok {
			e = &Endpoint{Method: r.Method, Template: tmpl, Sample: r.Path, PerWindow: make([]int, n)}
			byKey[key] = e
			p.Endpoints = append(p.Endpoints, e)
		}
		k := int(r.Time.Sub(start) / window)
		e.Count++
		e.PerWindow[k]++
		p.PerWindow[k]++
		if r.Status >= 500 {
			e.Errors++
		}
		if r.Status >= 400 {
			e.Failures++
		}
		if r.HasDuration {
			e.Durations = append(e.Durations, r.Duration)
		}
		times[key] = append(times[key], r.Time)
		all = append(all, r.Time)
	}
	for _, e := range p.Endpoints {
		e.Share = float64(e.Count) / float64(p.Total)
		e.PeakToMean = peakToMean(e.PerWindow)
		e.InterArrivalCV = interArrivalCV(times[e.Name()])
	}
	slices.SortStableFunc(p.Endpoints, func(a, b *Endpoint) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name(), b.Name()))
	})
	p.PeakToMean = peakToMean(p.PerWindow)
	p.InterArrivalCV = interArrivalCV(all)
	for i, c := range p.PerWindow {
		if c > p.PerWindow[p.PeakWindow] {
			p.PeakWindow = i
		}
	}
	return p, nil
}

func peakToMean(counts []int) float64 {
	var sum, peak int
	for _, c := range counts {
		sum += c
		peak = max(peak, c)
	}
	if sum == 0 {
		return 0
	}
	return float64(peak) / (float64(sum) / float64(len(counts)))
}

// interArrivalCV is stddev/mean of the gaps between sorted times.
func interArrivalCV(ts []time.Time) float64 {
	if len(ts) < 3 {
		return 0
	}
	sorted := slices.Clone(ts)
	slices.SortFunc(sorted, func(a, b time.Time) int { return a.Compare(b) })
	gaps := make([]float64, len(sorted)-1)
	var mean float64
	for i := range gaps {
		gaps[i] = sorted[i+1].Sub(sorted[i]).Seconds()
		mean += gaps[i]
	}
	mean /= float64(len(gaps))
	if mean == 0 {
		return 0
	}
	var v float64
	for _, g := range gaps {
		v += (g - mean) * (g - mean)
	}
	return math.Sqrt(v/float64(len(gaps))) / mean
}

// WriteSummary prints the profile: totals, peak window, burstiness and the
// top endpoints.
func (p *Profile) WriteSummary(w io.Writer, malformed int, top int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "traffic profile: %d requests over %d windows of %s from %s", p.Total, len(p.PerWindow), p.Window,
		p.Start.UTC().Format(time.RFC3339))
	if malformed > 0 {
		fmt.Fprintf(&b, " (%d malformed lines skipped)", malformed)
	}
	b.WriteString("\n")
	mean := float64(p.Total) / float64(len(p.PerWindow))
	fmt.Fprintf(&b, "peak window: #%d at %s with %d requests (mean %.1f per window)\n", p.PeakWindow,
		p.Start.Add(time.Duration(p.PeakWindow)*p.Window).UTC().Format(time.RFC3339), p.PerWindow[p.PeakWindow], mean)
	fmt.Fprintf(&b, "burstiness: peak-to-mean %.2f, inter-arrival CV %.2f (1 = Poisson, > 1 bursty)\n", p.PeakToMean, p.InterArrivalCV)
	fmt.Fprintf(&b, "%-40s %8s %7s %6s %6s %6s\n", "ENDPOINT", "REQUESTS", "SHARE", "PEAK/M", "CV", "5XX")
	for i, e := range p.Endpoints {
		if top > 0 && i == top {
			fmt.Fprintf(&b, "... and %d more endpoints\n", len(p.Endpoints)-top)
			break
		}
		fmt.Fprintf(&b, "%-40s %8d %6.2f%% %6.2f %6.2f %6d\n", e.Name(), e.Count, e.Share*100, e.PeakToMean, e.InterArrivalCV, e.Errors)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// rampFraction is the part of each window spent ramping from the previous
// window's rate to its own: the ramp moves rampFraction/2 of the change in
// count between two windows (0.05%) into the earlier one.
const rampFraction = 0.001

// Plan writes a plan reproducing the profile: one ramping-arrival-rate
// scenario per endpoint whose stages step from window to window (a short
// ramp, then flat), with time_unit set to the (compressed) window, so that
// each stage's target is the window's count times Scale (to three decimals)
// and each window's arrivals are that count but for the ramp's share.
func (p *Profile) Plan(opts Options) ([]byte, error) {
	opts, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	unit := time.Duration(float64(p.Window) / opts.Speedup)
	ramp := time.Duration(float64(unit) * rampFraction)
	if ramp <= 0 {
		ramp = 1
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Derived by `surge plan from-log` from %d requests in %d windows of %s (from %s).\n",
		p.Total, len(p.PerWindow), p.Window, p.Start.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "# Scale %s, speedup %s: each window runs in %s with its count x %s.\n",
		num(opts.Scale), num(opts.Speedup), unit, num(opts.Scale))
	fmt.Fprintf(&b, "# Burstiness in the log: peak-to-mean %.2f, inter-arrival CV %.2f; peak window #%d (%d requests).\n",
		p.PeakToMean, p.InterArrivalCV, p.PeakWindow, p.PerWindow[p.PeakWindow])
	b.WriteString("# Request mix:\n")
	for _, e := range p.Endpoints {
		fmt.Fprintf(&b, "#   %-40s %6.2f%%  peak-to-mean %.2f  CV %.2f\n", e.Name(), e.Share*100, e.PeakToMean, e.InterArrivalCV)
	}
	fmt.Fprintf(&b, "name: %s\n", strconv.Quote(opts.Name))
	fmt.Fprintf(&b, "description: %s\n", strconv.Quote(fmt.Sprintf("replays the rate curve and request mix of an access log (%d requests, scale %s)", p.Total, num(opts.Scale))))
	fmt.Fprintf(&b, "base_url: %s  # surge run --base-url overrides it\n", strconv.Quote(opts.Target))
	if len(opts.Regions) > 0 {
		b.WriteString("regions:\n")
		names := make([]string, 0, len(opts.Regions))
		for n := range opts.Regions {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "  %s: {weight: %s}\n", strconv.Quote(n), num(opts.Regions[n]))
		}
	}
	b.WriteString("scenarios:\n")
	used := map[string]bool{}
	for _, e := range p.Endpoints {
		name := scenarioName(e, used)
		rates := make([]float64, len(e.PerWindow))
		var peak float64
		for k, c := range e.PerWindow {
			rates[k] = rounded(float64(c) * opts.Scale)
			peak = max(peak, rates[k])
		}
		peakPerSec := peak / unit.Seconds()
		pre := max(10, int64(math.Ceil(peakPerSec*0.5)))
		fmt.Fprintf(&b, "  %s:\n", name)
		fmt.Fprintf(&b, "    # %s: %d requests (%.2f%% of the log), peak-to-mean %.2f, inter-arrival CV %.2f\n",
			e.Name(), e.Count, e.Share*100, e.PeakToMean, e.InterArrivalCV)
		b.WriteString("    executor: ramping-arrival-rate\n")
		fmt.Fprintf(&b, "    time_unit: %s\n", unit)
		fmt.Fprintf(&b, "    start_rate: %s\n", num(rates[0]))
		fmt.Fprintf(&b, "    pre_allocated_vus: %d\n", pre)
		fmt.Fprintf(&b, "    max_vus: %d\n", max(50, 4*pre))
		b.WriteString("    stages:\n")
		for k, r := range rates {
			if k == 0 {
				fmt.Fprintf(&b, "      - {duration: %s, target: %s}\n", unit, num(r))
				continue
			}
			fmt.Fprintf(&b, "      - {duration: %s, target: %s}\n", ramp, num(r))
			fmt.Fprintf(&b, "      - {duration: %s, target: %s}\n", unit-ramp, num(r))
		}
		b.WriteString("    requests:\n")
		fmt.Fprintf(&b, "      - name: %s\n", strconv.Quote(e.Name()))
		fmt.Fprintf(&b, "        method: %s\n", e.Method)
		fmt.Fprintf(&b, "        url: %s\n", strconv.Quote(e.Sample))
	}
	return []byte(b.String()), nil
}

// num formats a float exactly (shortest round-trip form).
func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// rounded is v to three decimals, so that the plan reads "target: 28" or
// "target: 2.8" (a count times --scale), not 27.997498749374685.
func rounded(v float64) float64 { return math.Round(v*1000) / 1000 }

// scenarioName makes a unique YAML-safe name from an endpoint:
// "get_api_users_id".
func scenarioName(e *Endpoint, used map[string]bool) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(e.Method))
	lastUnderscore := false
	for _, r := range strings.ToLower(e.Template) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			lastUnderscore = false
		} else if !lastUnderscore {
			b.WriteByte('_')
			lastUnderscore = true
		}
	}
	name := strings.TrimRight(b.String(), "_")
	base := name
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	used[name] = true
	return name
}
