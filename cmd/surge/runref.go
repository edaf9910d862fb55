package main

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// latestRef names a run where an id is expected: "latest" is the newest
// run, "latest:K=V[,K=V...]" the newest carrying those tags.
const latestRef = "latest"

// resolveRun returns the run id ref names: ref itself when it is an id,
// else the newest run (by start time, then id) that the latest reference
// selects, from the controller's list.
func resolveRun(ctx context.Context, c runsClient, ref string) (string, error) {
	spec, ok := strings.CutPrefix(ref, latestRef)
	if !ok || (spec != "" && !strings.HasPrefix(spec, ":")) {
		return ref, nil
	}
	var pairs []string
	if spec = strings.TrimPrefix(spec, ":"); spec != "" {
		pairs = strings.Split(spec, ",")
	}
	want, err := parseTags(pairs)
	if err != nil {
		return "", usageErrorf("run %q: tag %v (e.g. latest:environment=staging)", ref, err)
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := c.List(ctx, &surgev1.ListRunsRequest{})
	if err != nil {
		return "", rpcErr("list runs", c.addr, err)
	}
	var newest *surgev1.RunInfo
	for _, r := range resp.GetRuns() {
		if hasTags(r.GetTags(), want) && (newest == nil || newer(r, newest)) {
			newest = r
		}
	}
	switch {
	case newest == nil && len(want) == 0:
		return "", fmt.Errorf("run %q: the controller has no runs yet", ref)
	case newest == nil:
		return "", fmt.Errorf("run %q: no run is tagged %s (surge runs lists the runs and their tags)", ref, tagText(want))
	}
	return newest.GetRunId(), nil
}

// newer reports whether run a started after b (ids break ties: they sort
// by creation).
func newer(a, b *surgev1.RunInfo) bool {
	return cmp.Or(cmp.Compare(a.GetStartedAtUnixMs(), b.GetStartedAtUnixMs()), cmp.Compare(a.GetRunId(), b.GetRunId())) > 0
}

// resolveRuns resolves each non-empty ref in place.
func resolveRuns(ctx context.Context, c runsClient, refs ...*string) error {
	for _, r := range refs {
		if *r == "" {
			continue
		}
		id, err := resolveRun(ctx, c, *r)
		if err != nil {
			return err
		}
		*r = id
	}
	return nil
}
