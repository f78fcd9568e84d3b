package spec

// ListKind is the kind of a list of clusters.
const ListKind = "MySQLClusterList"

// MySQLClusterList is what the API returns for a collection.
type MySQLClusterList struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		// ResourceVersion is the store revision the list was read at.
		ResourceVersion string `json:"resourceVersion,omitempty"`
	} `json:"metadata"`
	Items []*MySQLCluster `json:"items"`
}

// Status is the API's error body, shaped like Kubernetes' Status so that
// clients written for one read the other.
type Status struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Status is "Failure" for every error.
	Status string `json:"status"`
	// Message is the whole human-readable error.
	Message string `json:"message"`
	// Reason is machine-readable: Invalid, NotFound, AlreadyExists, Conflict,
	// Unauthorized, Forbidden, RequestEntityTooLarge, UnsupportedMediaType, BadRequest,
	// ServiceUnavailable, InternalError.
	Reason  string         `json:"reason"`
	Code    int            `json:"code"`
	Details *StatusDetails `json:"details,omitempty"`
}

// StatusDetails names the object and lists field errors.
type StatusDetails struct {
	Name      string        `json:"name,omitempty"`
	Namespace string        `json:"namespace,omitempty"`
	Causes    []StatusCause `json:"causes,omitempty"`
}

// StatusCause is one field error.
type StatusCause struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Status reasons.
const (
	ReasonInvalid              = "Invalid"
	ReasonBadRequest           = "BadRequest"
	ReasonNotFound             = "NotFound"
	ReasonAlreadyExists        = "AlreadyExists"
	ReasonConflict             = "Conflict"
	ReasonUnauthorized         = "Unauthorized"
	ReasonForbidden            = "Forbidden"
	ReasonTooLarge             = "RequestEntityTooLarge"
	ReasonUnsupportedMediaType = "UnsupportedMediaType"
	ReasonServiceUnavailable   = "ServiceUnavailable"
	ReasonInternalError        = "InternalError"
)

// Error makes a Status usable as an error on the client side.
func (s *Status) Error() string { return s.Message }
