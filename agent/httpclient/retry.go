package httpclient

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/surgeload/surge/plan"
)

// retryPolicy is a plan.Retry with its defaults applied.
type retryPolicy struct {
	attempts                                    int
	on5xx, on429, onTimeout, onReset, onConnect bool
	codes                                       map[int]bool
	backoff                                     *plan.Backoff // nil: plan's defaults
	retryAfter                                  bool
}

// newRetry applies r's defaults; nil or one attempt: no policy. Errors
// name the plan field.
func newRetry(r *plan.Retry) (*retryPolicy, error) {
	if r == nil {
		return nil, nil
	}
	if r.Attempts < 1 || r.Attempts > 100 {
		return nil, fmt.Errorf("retry.attempts: must be in [1, 100], got %d", r.Attempts)
	}
	p := &retryPolicy{attempts: int(r.Attempts), backoff: r.Backoff, retryAfter: r.RetryAfter == nil || *r.RetryAfter}
	on := r.On
	if len(on) == 0 {
		on = []string{plan.Retry5xx, plan.Retry429, plan.RetryTimeout, plan.RetryReset, plan.RetryConnect}
	}
	var errs []error
	for i, c := range on {
		switch c {
		case plan.Retry5xx:
			p.on5xx = true
		case plan.Retry429:
			p.on429 = true
		case plan.RetryTimeout:
			p.onTimeout = true
		case plan.RetryReset:
			p.onReset = true
		case plan.RetryConnect:
			p.onConnect = true
		default:
			n, err := strconv.Atoi(c)
			if err != nil || n < 400 || n > 599 {
				errs = append(errs, fmt.Errorf("retry.on[%d]: unknown retry condition %q (valid: 5xx, 429, timeout, reset, connect, or a status code 400-599)", i, c))
				continue
			}
			if p.codes == nil {
				p.codes = map[int]bool{}
			}
			p.codes[n] = true
		}
	}
	if b := r.Backoff; b != nil {
		// The plan was validated where it was parsed; a share from
		// elsewhere is checked again here.
		switch b.Type {
		case "", plan.BackoffExponential, plan.BackoffConstant:
		default:
			errs = append(errs, fmt.Errorf("retry.backoff.type: unknown backoff %q (valid: constant, exponential)", b.Type))
		}
		if b.Multiplier != 0 && (!(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0)) {
			errs = append(errs, fmt.Errorf("retry.backoff.multiplier: must be a finite number >= 1, got %v", b.Multiplier))
		}
		if j := b.Jitter; j != nil && !(*j >= 0 && *j <= 1) {
			errs = append(errs, fmt.Errorf("retry.backoff.jitter: must be in [0, 1], got %v", *j))
		}
		if b.Max > 0 && b.Max < b.Base {
			errs = append(errs, fmt.Errorf("retry.backoff.max: must be >= base (%s), got %s", b.Base, b.Max))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if p.attempts == 1 {
		return nil, nil
	}
	return p, nil
}

// retryable reports whether an attempt that ended with code or err is
// retried.
func (p *retryPolicy) retryable(code int, err error) bool {
	if err != nil {
		var ce *connectError
		if errors.As(err, &ce) {
			return p.onConnect || p.onTimeout && Classify(err) == StatusTimeout
		}
		switch Classify(err) {
		case StatusTimeout:
			return p.onTimeout
		case StatusReset:
			return p.onReset
		case StatusRefused, StatusDNS:
			return p.onConnect
		}
		return false
	}
	return code >= 500 && code <= 599 && p.on5xx || code == 429 && p.on429 || p.codes[code]
}

// wait returns the wait before retry n (1, 2, ...): the server's
// Retry-After on a 429 or 503 when honoured, else the backoff; both capped
// at the backoff's max. u is uniform in [0, 1), for the jitter.
func (p *retryPolicy) wait(n, code int, retryAfter time.Duration, hasRA bool, u float64) time.Duration {
	if hasRA && p.retryAfter && (code == 429 || code == 503) {
		return min(retryAfter, p.backoff.Cap())
	}
	return p.backoff.Wait(int64(n), 1-u)
}
