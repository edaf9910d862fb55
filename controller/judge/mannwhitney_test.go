package judge

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/ciskip"
)

// histOf records n values of draw in a surge histogram, as agents do.
func histOf(n int, draw func() float64) Dist {
	h := hist.New()
	for range n {
		_ = h.RecordValue(int64(draw()))
	}
	return FromHist(h)
}

// expand writes d's values, one per line, for R.
func expand(t *testing.T, d Dist) string {
	t.Helper()
	var b strings.Builder
	for _, bin := range d {
		for range bin.N {
			b.WriteString(strconv.FormatFloat(bin.V, 'f', -1, 64))
			b.WriteByte('\n')
		}
	}
	p := filepath.Join(t.TempDir(), "x.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rWilcox runs R's wilcox.test(b, a) (normal approximation with the tie
// and continuity corrections, as here) and returns W, p, the estimate and
// the confidence interval.
func rWilcox(t *testing.T, a, b Dist, conf float64) [5]float64 {
	t.Helper()
	rs, err := exec.LookPath("Rscript")
	if err != nil {
		ciskip.Skipf(t, "R: Rscript is missing (make unit installs r-base-core): %v", err)
	}
	script := fmt.Sprintf(`x <- scan(%q, quiet=TRUE); y <- scan(%q, quiet=TRUE)
r <- wilcox.test(x, y, exact=FALSE, correct=TRUE, conf.int=TRUE, conf.level=%g)
cat(format(c(r$statistic, r$p.value, r$estimate, r$conf.int), digits=17), sep="\n")`, expand(t, b), expand(t, a), conf)
	out, err := exec.Command(rs, "-e", script).CombinedOutput()
	if err != nil {
		t.Fatalf("Rscript: %v\n%s", err, out)
	}
	var v [5]float64
	lines := strings.Fields(string(out))
	if len(lines) != 5 {
		t.Fatalf("Rscript printed %q", out)
	}
	for i, l := range lines {
		if v[i], err = strconv.ParseFloat(l, 64); err != nil {
			t.Fatalf("Rscript printed %q", out)
		}
	}
	return v
}

// TestAgreesWithR: U, the p-value, the Hodges–Lehmann shift and its
// interval agree with R's wilcox.test on the same values, with many ties
// (histogram buckets) and without a shift, with a small one and a large
// one.
func TestAgreesWithR(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	logn := func(median, sigma float64) func() float64 {
		return func() float64 { return median * math.Exp(sigma*rng.NormFloat64()) }
	}
	for _, c := range []struct {
		name   string
		a, b   Dist
		shifts bool
	}{
		{"equal", histOf(3000, logn(10_000, 0.3)), histOf(2000, logn(10_000, 0.3)), false},
		{"shift 2%", histOf(3000, logn(10_000, 0.3)), histOf(2500, logn(10_200, 0.3)), true},
		{"shift 30%, coarse", histOf(1500, logn(200_000, 0.5)), histOf(1500, logn(260_000, 0.5)), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := MannWhitney(c.a, c.b, 0.95)
			r := rWilcox(t, c.a, c.b, 0.95)
			t.Logf("measured: ours U %.1f p %.6g shift %g [%g, %g]; R W %.1f p %.6g estimate %g [%g, %g]",
				got.U, got.P, got.Shift, got.Lo, got.Hi, r[0], r[1], r[2], r[3], r[4])
			if got.U != r[0] {
				t.Errorf("U %v, R's W %v", got.U, r[0])
			}
			if math.Abs(got.P-r[1]) > 1e-9*math.Max(r[1], 1e-300) && math.Abs(got.P-r[1]) > 1e-12 {
				t.Errorf("p %v, R %v", got.P, r[1])
			}
			// R finds the estimate and interval by root finding (to its
			// tolerance); here they are the exact order statistics of the
			// differences, integers of µs: within 0.001 µs of R's.
			for i, v := range []float64{got.Shift, got.Lo, got.Hi} {
				if tol := 1e-3; math.Abs(v-r[2+i]) > tol {
					t.Errorf("%s: ours %v, R %v (tolerance %v)", []string{"estimate", "low", "high"}[i], v, r[2+i], tol)
				}
			}
			if c.shifts && got.P >= 0.05 || !c.shifts && got.P < 0.05 {
				t.Errorf("p %v for %s", got.P, c.name)
			}
		})
	}
}

// TestJudgeRates: on many simulated pairs of 10,000 latencies a side
// (log-normal, median 10 ms, as a service's), at most 2% of pairs from one
// distribution fail, and a 5% shift of the median is caught in at least
// 95% of pairs, with Kayenta's default confidence (0.98) and 2% allowed
// either way.
func TestJudgeRates(t *testing.T) {
	const pairs, n = 200, 10_000
	rng := rand.New(rand.NewPCG(3, 5))
	draw := func(median float64) func() float64 {
		return func() float64 { return median * math.Exp(0.4*rng.NormFloat64()) }
	}
	rule := Rule{AllowedIncrease: 0.02, AllowedDecrease: 0.02, Direction: "either"}
	falseFail, caught := 0, 0
	for range pairs {
		if Classify(histOf(n, draw(10_000)), histOf(n, draw(10_000)), rule).Class != Pass {
			falseFail++
		}
		if Classify(histOf(n, draw(10_000)), histOf(n, draw(10_500)), rule).Class == High {
			caught++
		}
	}
	t.Logf("measured: %d of %d equal pairs failed (%.1f%%), a 5%% shift caught in %d of %d (%.1f%%)",
		falseFail, pairs, 100*float64(falseFail)/pairs, caught, pairs, 100*float64(caught)/pairs)
	if float64(falseFail) > 0.02*pairs {
		t.Errorf("%d of %d equal pairs failed, want at most 2%%", falseFail, pairs)
	}
	if float64(caught) < 0.95*pairs {
		t.Errorf("a 5%% shift caught in %d of %d pairs, want at least 95%%", caught, pairs)
	}
}

// TestClassify: direction and allowed change decide; Score and Outcome
// follow Kayenta's bounds.
func TestClassify(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func(median float64) func() float64 {
		return func() float64 { return median * math.Exp(0.2*rng.NormFloat64()) }
	}
	a, slower, faster := histOf(5000, draw(10_000)), histOf(5000, draw(11_000)), histOf(5000, draw(9_000))
	for _, c := range []struct {
		name string
		b    Dist
		r    Rule
		want string
	}{
		{"slower fails", slower, Rule{}, High},
		{"slower within 20%", slower, Rule{AllowedIncrease: 0.2}, Pass},
		{"faster passes by default", faster, Rule{}, Pass},
		{"faster fails either way", faster, Rule{Direction: "either"}, Low},
		{"slower passes when only decreases fail", slower, Rule{Direction: "decrease"}, Pass},
	} {
		if v := Classify(a, c.b, c.r); v.Class != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, v.Class, v.Reason, c.want)
		}
	}
	vs := []Verdict{{Class: Pass}, {Class: Pass}, {Class: High}, {Class: Pass}}
	if s := Score(vs); s != 75 || Outcome(s, 95, 75) != "marginal" || Outcome(100, 95, 75) != "pass" || Outcome(50, 95, 75) != "fail" {
		t.Errorf("score %v, outcomes %s %s %s", s, Outcome(s, 95, 75), Outcome(100, 95, 75), Outcome(50, 95, 75))
	}
}
