package plan

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Limits of a run's tags: they label every stored run, summary, InfluxDB
// point and (once it is an output) Prometheus series, so they stay few and
// short.
const (
	MaxTags        = 32
	MaxTagValueLen = 256
)

// tagKeyRE is a tag key: a Prometheus label name without the reserved
// leading "__", at most 64 characters.
var tagKeyRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,63}$`)

// reservedTags are the tag keys surge's own series carry.
var reservedTags = []string{"agent", "event", "expr", "flow", "le", "metric", "monitor", "phase", "plan", "region", "request", "run", "run_id", "scenario", "status", "step"}

// CheckTag returns what is wrong with one tag, or nil.
func CheckTag(key, value string) error {
	switch {
	case !tagKeyRE.MatchString(key) || strings.HasPrefix(key, "__"):
		return fmt.Errorf("tag key %q: want letters, digits and _, not starting with a digit or __, at most 64", key)
	case slices.Contains(reservedTags, key):
		return fmt.Errorf("tag key %q is surge's own (reserved: %s)", key, strings.Join(reservedTags, ", "))
	case value == "":
		return fmt.Errorf("tag %s: the value is empty", key)
	case len(value) > MaxTagValueLen:
		return fmt.Errorf("tag %s: the value is %d bytes, at most %d", key, len(value), MaxTagValueLen)
	}
	return nil
}

// MergeTags returns the plan's tags with over's set over them (the command
// line's --tag wins); an error when the result has more than MaxTags.
func MergeTags(tags, over map[string]string) (map[string]string, error) {
	if len(over) == 0 {
		return tags, nil
	}
	out := make(map[string]string, len(tags)+len(over))
	for k, v := range tags {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	if len(out) > MaxTags {
		return nil, fmt.Errorf("%d tags, at most %d", len(out), MaxTags)
	}
	return out, nil
}

// checkTags adds every problem of p's tags to l; no tags are nil, so that
// `tags: {}` and none are the same plan on the wire.
func checkTags(l *errorList, p *Plan) {
	if len(p.Tags) == 0 {
		p.Tags = nil
	}
	tags := p.Tags
	if len(tags) > MaxTags {
		l.add("tags", "%d tags, at most %d", len(tags), MaxTags)
	}
	for _, k := range sortedKeys(tags) {
		if err := CheckTag(k, tags[k]); err != nil {
			l.add(joinPath("tags", k), "%v", err)
		}
	}
}
