package devcluster

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// ParseResources parses an agent's --resources flag in Mesos' text syntax:
// "cpus:4;mem:8192;disk:65536;ports:[31000-32000]". A name may carry a role,
// "cpus(mysql):2", which makes a static reservation (post-refinement format:
// one STATIC entry in reservations). Values are scalars, ranges
// "[a-b,c-d]" or sets "{x,y}". Like Mesos, cpus, mem, disk and ports that
// are not given get defaults: the host's CPUs, its memory and disk less
// some headroom, and ports [31000-32000].
func ParseResources(s string) ([]mesos.Resource, error) {
	var out []mesos.Resource
	seen := map[string]bool{}
	for _, item := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' }) {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, value, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("bad resource %q: expected name:value", item)
		}
		name, role := strings.TrimSpace(key), ""
		if i := strings.IndexByte(name, '('); i >= 0 {
			if !strings.HasSuffix(name, ")") {
				return nil, fmt.Errorf("bad resource %q: unterminated role", item)
			}
			role = name[i+1 : len(name)-1]
			name = name[:i]
		}
		if name == "" {
			return nil, fmt.Errorf("bad resource %q: empty name", item)
		}
		r, err := parseResourceValue(name, strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("bad resource %q: %w", item, err)
		}
		if role != "" && role != "*" {
			r.Reservations = []mesos.Resource_ReservationInfo{{
				Type: mesos.Resource_ReservationInfo_STATIC.Enum(),
				Role: aptr(role),
			}}
		}
		seen[name] = true
		out = append(out, r)
	}
	defaults := agentDefaultResources()
	for _, d := range defaults {
		if !seen[d.Name] {
			out = append(out, d)
		}
	}
	return out, nil
}

func parseResourceValue(name, v string) (mesos.Resource, error) {
	switch {
	case strings.HasPrefix(v, "["):
		ranges, err := parseRangesText(v)
		if err != nil {
			return mesos.Resource{}, err
		}
		return mesos.Resource{Name: name, Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: ranges}}, nil
	case strings.HasPrefix(v, "{"):
		if !strings.HasSuffix(v, "}") {
			return mesos.Resource{}, fmt.Errorf("unterminated set")
		}
		var items []string
		for _, it := range strings.Split(v[1:len(v)-1], ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		return mesos.Resource{Name: name, Type: mesos.SET.Enum(), Set: &mesos.Value_Set{Item: items}}, nil
	default:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return mesos.Resource{}, fmt.Errorf("bad scalar %q", v)
		}
		return agentScalar(name, f), nil
	}
}

func parseRangesText(v string) ([]mesos.Value_Range, error) {
	if !strings.HasSuffix(v, "]") {
		return nil, fmt.Errorf("unterminated ranges")
	}
	var out []mesos.Value_Range
	for _, part := range strings.Split(v[1:len(v)-1], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, ok := strings.Cut(part, "-")
		if !ok {
			hi = lo
		}
		b, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 64)
		e, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 64)
		if err1 != nil || err2 != nil || e < b {
			return nil, fmt.Errorf("bad range %q", part)
		}
		out = append(out, mesos.Value_Range{Begin: b, End: e})
	}
	return out, nil
}

func agentScalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

// agentDefaultResources mirrors Mesos' defaults for an agent without --resources:
// all CPUs, memory less 1 GB (half when under 2 GB), disk less 5 GB (half
// when under 10 GB) and ports [31000-32000].
func agentDefaultResources() []mesos.Resource {
	mem := 1024.0
	if total := hostMemoryMB(); total > 0 {
		if total >= 2048 {
			mem = total - 1024
		} else {
			mem = total / 2
		}
	}
	disk := 10240.0
	var st syscall.Statfs_t
	if err := syscall.Statfs(os.TempDir(), &st); err == nil {
		total := float64(st.Blocks) * float64(st.Bsize) / (1 << 20)
		if total >= 10240 {
			disk = total - 5120
		} else {
			disk = total / 2
		}
	}
	return []mesos.Resource{
		agentScalar("cpus", float64(runtime.NumCPU())),
		agentScalar("mem", float64(int64(mem))),
		agentScalar("disk", float64(int64(disk))),
		{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 31000, End: 32000}}}},
	}
}

func hostMemoryMB() float64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseFloat(fields[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// ParseAttributes parses --attributes, "rack:r1;zone:eu-1": numbers become
// scalars, "[a-b]" ranges, "{x,y}" sets, anything else text.
func ParseAttributes(s string) ([]mesos.Attribute, error) {
	var out []mesos.Attribute
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return nil, fmt.Errorf("bad attribute %q: expected name:value", item)
		}
		attr := mesos.Attribute{Name: name}
		if f, err := strconv.ParseFloat(value, 64); err == nil {
			attr.Type = mesos.SCALAR
			attr.Scalar = &mesos.Value_Scalar{Value: f}
		} else if strings.HasPrefix(value, "[") {
			ranges, err := parseRangesText(value)
			if err != nil {
				return nil, fmt.Errorf("bad attribute %q: %w", item, err)
			}
			attr.Type = mesos.RANGES
			attr.Ranges = &mesos.Value_Ranges{Range: ranges}
		} else if strings.HasPrefix(value, "{") && strings.HasSuffix(value, "}") {
			attr.Type = mesos.SET
			attr.Set = &mesos.Value_Set{Item: strings.Split(value[1:len(value)-1], ",")}
		} else {
			attr.Type = mesos.TEXT
			attr.Text = &mesos.Value_Text{Value: value}
		}
		out = append(out, attr)
	}
	return out, nil
}

// stoutDuration formats d the way Mesos' stout library prints durations,
// which is what executors parse: the largest unit the value reaches, with a
// fractional part when needed ("5secs", "15mins", "250ms", "1.5secs").
func stoutDuration(d time.Duration) string {
	units := []struct {
		size time.Duration
		name string
	}{
		{7 * 24 * time.Hour, "weeks"}, {24 * time.Hour, "days"}, {time.Hour, "hrs"},
		{time.Minute, "mins"}, {time.Second, "secs"}, {time.Millisecond, "ms"}, {time.Microsecond, "us"},
	}
	for _, u := range units {
		if d >= u.size {
			return strconv.FormatFloat(float64(d)/float64(u.size), 'f', -1, 64) + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

// proto returns a pointer to v, for optional proto2 fields.
func aptr[T any](v T) *T { return &v }
