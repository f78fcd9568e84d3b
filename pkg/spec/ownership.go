package spec

import (
	"bytes"
	"encoding/json"
	"maps"
)

// WithUserFields returns a copy of current carrying the parts of desired that
// users own (labels, annotations, spec); everything the server owns (uid,
// creation time, finalizers, status) stays. Generation moves only when the
// spec changes. changed reports whether the result differs from current, so
// re-applying the same file writes nothing.
func WithUserFields(current, desired *MySQLCluster) (next *MySQLCluster, changed bool) {
	out := *current
	out.Metadata.Labels = desired.Metadata.Labels
	out.Metadata.Annotations = desired.Metadata.Annotations
	out.Spec = desired.Spec
	specChanged := !SameJSON(current.Spec, desired.Spec)
	if specChanged {
		out.Metadata.Generation++
	}
	metaChanged := !maps.Equal(current.Metadata.Labels, desired.Metadata.Labels) ||
		!maps.Equal(current.Metadata.Annotations, desired.Metadata.Annotations)
	return &out, specChanged || metaChanged
}

// SameJSON reports whether a and b serialise identically: the equality that
// matters for stored objects, where omitempty makes nil and empty alike.
func SameJSON(a, b any) bool {
	ra, errA := json.Marshal(a)
	rb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ra, rb)
}
