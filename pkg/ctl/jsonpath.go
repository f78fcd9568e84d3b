package ctl

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// jsonPath evaluates the subset of kubectl's JSONPath that scripts need:
// "{.status.endpoints.primary}", "{.status.instances[0].host}" (the braces
// are optional). Strings print bare, anything else as JSON.
func jsonPath(v any, expr string) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", err
	}
	path := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(expr), "{"), "}")
	if !strings.HasPrefix(path, ".") {
		return "", fmt.Errorf("jsonpath %q: start at the object with '.', e.g. {.status.phase}", expr)
	}
	cur := doc
	for _, step := range splitPath(path[1:]) {
		if cur, err = walk(cur, step); err != nil {
			return "", fmt.Errorf("jsonpath %q: %w", expr, err)
		}
	}
	if s, ok := cur.(string); ok {
		return s, nil
	}
	out, err := json.Marshal(cur)
	return string(out), err
}

// splitPath turns "a.b[0].c" into "a", "b", "[0]", "c".
func splitPath(p string) []string {
	var out []string
	for _, part := range strings.Split(p, ".") {
		for part != "" {
			i := strings.Index(part, "[")
			switch {
			case i < 0:
				out, part = append(out, part), ""
			case i > 0:
				out, part = append(out, part[:i]), part[i:]
			default:
				j := strings.Index(part, "]")
				if j < 0 {
					j = len(part) - 1
				}
				out, part = append(out, part[:j+1]), part[j+1:]
			}
		}
	}
	return out
}

func walk(cur any, step string) (any, error) {
	if strings.HasPrefix(step, "[") {
		i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(step, "["), "]"))
		list, ok := cur.([]any)
		if err != nil || !ok {
			return nil, fmt.Errorf("%s: not a list index into a list", step)
		}
		if i < 0 || i >= len(list) {
			return nil, fmt.Errorf("%s: index out of range (%d items)", step, len(list))
		}
		return list[i], nil
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: not an object", step)
	}
	v, ok := m[step]
	if !ok {
		return nil, fmt.Errorf("%s: no such field", step)
	}
	return v, nil
}
