package hist

import (
	"cmp"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Key names a series within one agent's or one region's measurements.
type Key struct {
	Scenario string
	Flow     string
	Request  string
	// Status is a status class ("1xx".."5xx") or an error kind ("timeout",
	// "refused", "reset", "tls", "dns", "protocol", "blocked", "other").
	Status string
}

// ErrorName is the name failures of a series with status st go by in
// summaries, thresholds and comparisons: "http_4xx" and "http_5xx" for
// those status classes, "" for the classes that are not errors ("1xx",
// "2xx", "3xx"), and the error kind itself otherwise ("timeout", "refused",
// "reset", "tls", "dns", "protocol", "blocked", "other").
func ErrorName(st string) string {
	switch st {
	case "4xx", "5xx":
		return "http_" + st
	case "1xx", "2xx", "3xx":
		return ""
	}
	return st
}

func compareKeys(a, b Key) int {
	return cmp.Or(
		cmp.Compare(a.Scenario, b.Scenario),
		cmp.Compare(a.Flow, b.Flow),
		cmp.Compare(a.Request, b.Request),
		cmp.Compare(a.Status, b.Status),
	)
}

// keyFromProto is the key of wire key k.
func keyFromProto(k *surgev1.SeriesKey) Key {
	return Key{Scenario: k.GetScenario(), Flow: k.GetFlow(), Request: k.GetRequest(), Status: k.GetStatus()}
}

// proto is k's wire form.
func (k Key) proto() *surgev1.SeriesKey {
	return &surgev1.SeriesKey{Scenario: k.Scenario, Flow: k.Flow, Request: k.Request, Status: k.Status}
}
