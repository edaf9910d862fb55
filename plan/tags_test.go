package plan

import (
	"maps"
	"reflect"
	"strings"
	"testing"
)

func TestTags(t *testing.T) {
	const scen = "scenarios:\n  s: {executor: constant-vus, vus: 1, duration: 1s, requests: [{url: 'http://127.0.0.1:1/'}]}\n"
	p, err := Parse("t.yaml", []byte("name: t\ntags: {environment: staging, commit: abc123}\n"+scen))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"environment": "staging", "commit": "abc123"}; !maps.Equal(p.Tags, want) {
		t.Errorf("tags %v, want %v", p.Tags, want)
	}
	back, err := FromJSON(mustCanonical(t, p))
	if err != nil || !maps.Equal(back.Tags, p.Tags) {
		t.Errorf("tags through canonical JSON: %v, %v", back.Tags, err)
	}

	empty, err := Parse("t.yaml", []byte("name: t\ntags: {}\n"+scen))
	if err != nil {
		t.Fatal(err)
	}
	if back, err := FromJSON(mustCanonical(t, empty)); err != nil || !reflect.DeepEqual(back, empty) {
		t.Errorf("tags: {} through canonical JSON: %#v, want %#v (%v)", back.Tags, empty.Tags, err)
	}

	_, err = Parse("t.yaml", []byte("name: t\ntags: {region: eu, 9x: a, __x: b, empty: ''}\n"+scen))
	for _, want := range []string{
		`t.yaml:2:16: tags.region: tag key "region" is surge's own`,
		`t.yaml:2:24: tags.9x: tag key "9x"`,
		`t.yaml:2:32: tags.__x: tag key "__x"`,
		`t.yaml:2:42: tags.empty: tag empty: the value is empty`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nlacks %q", err, want)
		}
	}

	merged, err := MergeTags(map[string]string{"a": "1", "b": "2"}, map[string]string{"b": "3"})
	if err != nil || !maps.Equal(merged, map[string]string{"a": "1", "b": "3"}) {
		t.Errorf("merge: %v, %v", merged, err)
	}
	many := map[string]string{}
	for i := range MaxTags + 1 {
		many[string(rune('a'+i%26))+strings.Repeat("x", i/26)] = "v"
	}
	if _, err := MergeTags(nil, many); err == nil {
		t.Errorf("%d tags merged, want at most %d", len(many), MaxTags)
	}
	if err := CheckTag("k", strings.Repeat("v", MaxTagValueLen+1)); err == nil {
		t.Error("an over-long value passed")
	}
}
