package httpclient

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// splitJSONPath splits a plan's JSON path ("$.items.0.id", "items[0].id")
// into its object keys and array indexes.
func splitJSONPath(path string) []string {
	path = strings.TrimPrefix(strings.TrimPrefix(path, "$"), ".")
	path = strings.NewReplacer("[", ".", "]", "").Replace(path)
	return strings.Split(path, ".")
}

// jsonFind returns the raw JSON value at path in doc. It reads doc only as
// far as the value's end, skipping what lies before it without decoding;
// false when the path is not there or doc is malformed on the way.
func jsonFind(doc []byte, path []string) ([]byte, bool) {
	i := skipSpace(doc, 0)
	for _, seg := range path {
		if i >= len(doc) {
			return nil, false
		}
		var ok bool
		switch doc[i] {
		case '{':
			i, ok = jsonMember(doc, i, seg)
		case '[':
			i, ok = jsonElement(doc, i, seg)
		}
		if !ok {
			return nil, false
		}
	}
	end, ok := skipValue(doc, i)
	if !ok {
		return nil, false
	}
	return doc[i:end], true
}

// jsonMember returns where the value of key starts in the object at i.
func jsonMember(doc []byte, i int, key string) (int, bool) {
	i = skipSpace(doc, i+1)
	for i < len(doc) && doc[i] == '"' {
		ks := i
		end, ok := skipString(doc, i)
		if !ok {
			return 0, false
		}
		name := doc[ks+1 : end-1]
		i = skipSpace(doc, end)
		if i >= len(doc) || doc[i] != ':' {
			return 0, false
		}
		i = skipSpace(doc, i+1)
		if string(name) == key || bytes.IndexByte(name, '\\') >= 0 && unquote(doc[ks:end]) == key {
			return i, true
		}
		if i, ok = skipValue(doc, i); !ok {
			return 0, false
		}
		i = skipSpace(doc, i)
		if i >= len(doc) || doc[i] != ',' {
			return 0, false
		}
		i = skipSpace(doc, i+1)
	}
	return 0, false
}

// jsonElement returns where element seg (an index) starts in the array at i.
func jsonElement(doc []byte, i int, seg string) (int, bool) {
	n, err := strconv.Atoi(seg)
	if err != nil || n < 0 {
		return 0, false
	}
	i = skipSpace(doc, i+1)
	for k := 0; i < len(doc) && doc[i] != ']'; k++ {
		if k == n {
			return i, true
		}
		var ok bool
		if i, ok = skipValue(doc, i); !ok {
			return 0, false
		}
		i = skipSpace(doc, i)
		if i >= len(doc) || doc[i] != ',' {
			return 0, false
		}
		i = skipSpace(doc, i+1)
	}
	return 0, false
}

// skipValue returns the end of the JSON value at i.
func skipValue(doc []byte, i int) (int, bool) {
	if i >= len(doc) {
		return 0, false
	}
	switch doc[i] {
	case '"':
		return skipString(doc, i)
	case '{', '[':
		depth := 0
		for i < len(doc) {
			switch doc[i] {
			case '"':
				end, ok := skipString(doc, i)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	start := i
	for i < len(doc) && strings.IndexByte(",}] \t\r\n", doc[i]) < 0 {
		i++
	}
	return i, i > start
}

// skipString returns the end of the JSON string at i (past its quote).
func skipString(doc []byte, i int) (int, bool) {
	for j := i + 1; j < len(doc); j++ {
		switch doc[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\r' || doc[i] == '\n') {
		i++
	}
	return i
}

// unquote decodes a JSON string; "" when it is not one.
func unquote(raw []byte) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// jsonRawText is a raw JSON value as an extraction takes it: a string
// decoded, anything else (numbers exactly as written) as it stands.
func jsonRawText(raw []byte) string {
	if len(raw) > 0 && raw[0] == '"' {
		if bytes.IndexByte(raw, '\\') < 0 {
			return string(raw[1 : len(raw)-1])
		}
		return unquote(raw)
	}
	return string(raw)
}

// jsonCheckText is a raw JSON value as a json_path check compares it:
// strings bare, numbers in shortest form, true/false/null, objects and
// arrays compact with sorted keys.
func jsonCheckText(raw []byte) (string, bool) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	case nil:
		return "null", true
	}
	b, err := json.Marshal(v)
	return string(b), err == nil
}
