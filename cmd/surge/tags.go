package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/surgeload/surge/plan"
)

// tagFlag adds the repeatable --tag KEY=VALUE flag to cmd, with usage.
func tagFlag(cmd *cobra.Command, into *[]string, usage string) {
	cmd.Flags().StringArrayVar(into, "tag", nil, usage)
}

// parseTags reads KEY=VALUE pairs, each valid as a plan's tag; a key
// given twice keeps the last value. Callers say where the pairs came from.
func parseTags(list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want KEY=VALUE", kv)
		}
		if err := plan.CheckTag(k, v); err != nil {
			return nil, fmt.Errorf("%s: %w", kv, err)
		}
		out[k] = v
	}
	return out, nil
}

// tagFlags reads --tag flags; a bad one is a usage error.
func tagFlags(list []string) (map[string]string, error) {
	tags, err := parseTags(list)
	if err != nil {
		return nil, usageErrorf("--tag %v (e.g. --tag environment=staging)", err)
	}
	return tags, nil
}

// hasTags reports whether have carries every tag of want.
func hasTags(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// tagText is tags as "k=v,k2=v2", sorted by key; "-" without any.
func tagText(tags map[string]string) string {
	if len(tags) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		parts = append(parts, k+"="+tags[k])
	}
	return strings.Join(parts, ",")
}

// nonNil is m, or an empty map for nil, so that JSON says {}.
func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
