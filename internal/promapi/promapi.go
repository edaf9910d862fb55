// Package promapi runs instant queries against a Prometheus HTTP API
// (/api/v1/query): the one call surge's baseline reader and run monitors
// make.
package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client queries one Prometheus server.
type Client struct {
	// URL is the server's base URL, such as http://127.0.0.1:9090.
	URL string
	// Header is sent with every query (Authorization, X-Scope-OrgID).
	Header http.Header
	// HTTP is the client to use; nil: http.DefaultClient.
	HTTP *http.Client
}

// Sample is one series of an instant query's result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// QueryError is an answer of the server's that is not a result: a PromQL
// syntax error (Type "bad_data"), a timeout, an execution error.
type QueryError struct {
	Type, Message string
}

func (e *QueryError) Error() string { return e.Type + ": " + e.Message }

// IsBadQuery reports whether err is the server refusing the query itself
// (a syntax or type error), not failing to answer it.
func IsBadQuery(err error) bool {
	var qe *QueryError
	return errors.As(err, &qe) && qe.Type == "bad_data"
}

// Query evaluates expr at time at. A scalar result is one sample without
// labels; a range vector or string result is an error. NaN and infinite
// values are kept: callers decide what they mean.
func (c *Client) Query(ctx context.Context, expr string, at time.Time) ([]Sample, error) {
	form := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("promapi: %w", err)
	}
	for k, vs := range c.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("promapi: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("promapi: %s answered %s, not the query API's JSON", c.URL, resp.Status)
	}
	if out.Status != "success" {
		return nil, &QueryError{Type: out.ErrorType, Message: out.Error}
	}
	return decodeResult(out.Data.ResultType, out.Data.Result)
}

// decodeResult reads a vector or scalar result.
func decodeResult(typ string, raw json.RawMessage) ([]Sample, error) {
	switch typ {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(raw, &vec); err != nil {
			return nil, fmt.Errorf("promapi: vector result: %w", err)
		}
		out := make([]Sample, 0, len(vec))
		for _, s := range vec {
			v, err := parseValue(s.Value[1])
			if err != nil {
				return nil, err
			}
			out = append(out, Sample{Metric: s.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var pair [2]any
		if err := json.Unmarshal(raw, &pair); err != nil {
			return nil, fmt.Errorf("promapi: scalar result: %w", err)
		}
		v, err := parseValue(pair[1])
		if err != nil {
			return nil, err
		}
		return []Sample{{Value: v}}, nil
	}
	return nil, fmt.Errorf("promapi: a %s result, want an instant vector or a scalar", typ)
}

// parseValue reads a sample value, which the API sends as a string
// ("1.5", "NaN", "+Inf").
func parseValue(v any) (float64, error) {
	s, _ := v.(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("promapi: a value that is not a number: %v", v)
	}
	return f, nil
}
