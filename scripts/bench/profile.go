package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// cpuProfile is what a Go CPU profile (pprof's profile.proto, as
// runtime/pprof writes it) says about where the CPU went: the samples and
// CPU of all stacks, and of the stacks with a frame in a function named
// with one of the prefixes asked for (each stack counted once, inlined
// frames included).
type cpuProfile struct {
	Samples, Matched     int64
	TotalNS, MatchedNS   int64
	MatchedByPrefix      map[string]int64 // CPU ns per prefix (a sample may count under several)
	FunctionsSeen        int
	PrefixesWithoutFrame []string // prefixes no function in the profile has
}

// Share is the matched samples' part of the profile's CPU.
func (p cpuProfile) Share() float64 {
	if p.TotalNS <= 0 {
		return 0
	}
	return float64(p.MatchedNS) / float64(p.TotalNS)
}

// profileMsg is the part of profile.proto read here.
type profileMsg struct {
	sampleTypes []int64             // string index of each value's type
	samples     [][2][]uint64       // location ids, values (as uint64)
	locations   map[uint64][]uint64 // location id: function ids of its lines
	functions   map[uint64]int64    // function id: string index of its name
	strings     []string
}

// parseCPUProfile reads a gzip-compressed (or plain) CPU profile and adds
// up the CPU of the samples whose stack holds a function named with one
// of prefixes.
func parseCPUProfile(b []byte, prefixes []string) (cpuProfile, error) {
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		z, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return cpuProfile{}, fmt.Errorf("cpu profile: %w", err)
		}
		if b, err = io.ReadAll(z); err != nil {
			return cpuProfile{}, fmt.Errorf("cpu profile: %w", err)
		}
	}
	m, err := decodeProfile(b)
	if err != nil {
		return cpuProfile{}, fmt.Errorf("cpu profile: %w", err)
	}
	// Go's CPU profiles have two values per sample (a stack): samples/count
	// and cpu/nanoseconds.
	vi, ci := len(m.sampleTypes)-1, -1
	for i, t := range m.sampleTypes {
		if t >= 0 && int(t) < len(m.strings) {
			switch m.strings[t] {
			case "cpu":
				vi = i
			case "samples":
				ci = i
			}
		}
	}
	if vi < 0 {
		return cpuProfile{}, errors.New("cpu profile: no sample types")
	}
	// Which prefixes each function's name has.
	match := map[uint64][]int{}
	seen := make([]bool, len(prefixes))
	for id, si := range m.functions {
		if si < 0 || int(si) >= len(m.strings) {
			return cpuProfile{}, fmt.Errorf("cpu profile: function %d: string %d out of range", id, si)
		}
		for k, p := range prefixes {
			if strings.HasPrefix(m.strings[si], p) {
				match[id] = append(match[id], k)
				seen[k] = true
			}
		}
	}
	out := cpuProfile{MatchedByPrefix: map[string]int64{}, FunctionsSeen: len(m.functions)}
	for k, s := range seen {
		if !s {
			out.PrefixesWithoutFrame = append(out.PrefixesWithoutFrame, prefixes[k])
		}
	}
	for _, s := range m.samples {
		locs, vals := s[0], s[1]
		if vi >= len(vals) {
			return cpuProfile{}, errors.New("cpu profile: a sample has fewer values than sample types")
		}
		ns, count := int64(vals[vi]), int64(1)
		if ci >= 0 && ci < len(vals) {
			count = int64(vals[ci])
		}
		out.Samples += count
		out.TotalNS += ns
		hit := make([]bool, len(prefixes))
		found := false
		for _, l := range locs {
			for _, f := range m.locations[l] {
				for _, k := range match[f] {
					hit[k], found = true, true
				}
			}
		}
		if !found {
			continue
		}
		out.Matched += count
		out.MatchedNS += ns
		for k, h := range hit {
			if h {
				out.MatchedByPrefix[prefixes[k]] += ns
			}
		}
	}
	return out, nil
}

// Field numbers of profile.proto.
const (
	profSampleType  = 1
	profSample      = 2
	profLocation    = 4
	profFunction    = 5
	profStringTable = 6
	sampleLocation  = 1
	sampleValue     = 2
	locID           = 1
	locLine         = 4
	lineFunction    = 1
	funcID          = 1
	funcName        = 2
	valueTypeType   = 1
)

func decodeProfile(b []byte) (*profileMsg, error) {
	m := &profileMsg{locations: map[uint64][]uint64{}, functions: map[uint64]int64{}}
	err := fields(b, func(num protowire.Number, v []byte, x uint64) error {
		switch num {
		case profSampleType:
			var t int64 = -1
			err := fields(v, func(n protowire.Number, _ []byte, x uint64) error {
				if n == valueTypeType {
					t = int64(x)
				}
				return nil
			})
			m.sampleTypes = append(m.sampleTypes, t)
			return err
		case profSample:
			var s [2][]uint64
			err := fields(v, func(n protowire.Number, v []byte, x uint64) error {
				switch n {
				case sampleLocation:
					return appendVarints(&s[0], v, x)
				case sampleValue:
					return appendVarints(&s[1], v, x)
				}
				return nil
			})
			m.samples = append(m.samples, s)
			return err
		case profLocation:
			return m.decodeLocation(v)
		case profFunction:
			var id uint64
			var name int64 = -1
			err := fields(v, func(n protowire.Number, _ []byte, x uint64) error {
				switch n {
				case funcID:
					id = x
				case funcName:
					name = int64(x)
				}
				return nil
			})
			m.functions[id] = name
			return err
		case profStringTable:
			m.strings = append(m.strings, string(v))
		}
		return nil
	})
	return m, err
}

func (m *profileMsg) decodeLocation(b []byte) error {
	var id uint64
	var funcs []uint64
	err := fields(b, func(n protowire.Number, v []byte, x uint64) error {
		switch n {
		case locID:
			id = x
		case locLine:
			return fields(v, func(n protowire.Number, _ []byte, x uint64) error {
				if n == lineFunction {
					funcs = append(funcs, x)
				}
				return nil
			})
		}
		return nil
	})
	m.locations[id] = funcs
	return err
}

// fields calls fn for each field of the message b: v is a length-delimited
// field's bytes (nil otherwise), x a varint field's value. Fixed-width
// fields are skipped.
func fields(b []byte, fn func(num protowire.Number, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var (
			v []byte
			x uint64
		)
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
			if v == nil {
				v = []byte{}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.VarintType && typ != protowire.BytesType {
			continue
		}
		if err := fn(num, v, x); err != nil {
			return err
		}
	}
	return nil
}

// appendVarints appends a repeated varint field: packed (v set) or one
// value (x).
func appendVarints(dst *[]uint64, v []byte, x uint64) error {
	if v == nil {
		*dst = append(*dst, x)
		return nil
	}
	for len(v) > 0 {
		y, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return protowire.ParseError(n)
		}
		*dst = append(*dst, y)
		v = v[n:]
	}
	return nil
}
