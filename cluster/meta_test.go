package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	in := Meta{
		Role:        RoleController,
		ID:          "ctl-1",
		Incarnation: NewIncarnation(),
		Region:      "us-east",
		Zone:        "us-east-1a",
		GRPCAddr:    "10.0.0.1:7070",
		Version:     "v0.1.0",
	}
	b, err := in.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	out, err := DecodeMeta(b)
	if err != nil {
		t.Fatalf("DecodeMeta: %v", err)
	}
	if out != in {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
	if got, want := in.Name(), "ctl-1-"+in.Incarnation; got != want {
		t.Fatalf("Name() = %q, want %q", got, want)
	}
}

func TestMetaEncodeTooLarge(t *testing.T) {
	m := Meta{Role: RoleAgent, ID: "a", Incarnation: "x", Region: strings.Repeat("r", MetaMaxSize)}
	_, err := m.Encode()
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("Encode error = %v, want ErrMetaTooLarge", err)
	}
	if !strings.HasPrefix(err.Error(), "cluster: encode meta:") {
		t.Fatalf("error %q lacks the cluster prefix", err)
	}
}

func TestDecodeMetaErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":      "",
		"not json":   "garbage",
		"missing id": `{"r":"agent","inc":"x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeMeta([]byte(in)); err == nil {
				t.Fatalf("DecodeMeta(%q): no error", in)
			}
		})
	}
}

func TestNewIncarnationDiffers(t *testing.T) {
	a, b := NewIncarnation(), NewIncarnation()
	if a == b || len(a) == 0 || len(a) > 16 {
		t.Fatalf("NewIncarnation: %q, %q", a, b)
	}
}
