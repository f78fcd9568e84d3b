package spec

import "strconv"

// Roles a bearer token can have. Writes and reading passwords need admin;
// read-only tokens may read everything else in their namespaces.
const (
	RoleAdmin    = "admin"
	RoleReadOnly = "read-only"
)

// Roles lists the valid roles, most powerful first.
var Roles = []string{RoleAdmin, RoleReadOnly}

// Kinds of the token API.
const (
	APITokenKind     = "APIToken"
	APITokenListKind = "APITokenList"
	WhoAmIKind       = "WhoAmI"
)

// APIToken describes a bearer token of the API: whose it is and what it may
// do. The token itself appears once, in the answer to its creation; the
// scheduler keeps only its SHA-256.
type APIToken struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Name       string `json:"name"`
	Role       string `json:"role"`
	// Namespaces the token is limited to; empty means every namespace.
	Namespaces []string `json:"namespaces,omitempty"`
	// Source is where the token is defined: "file" (the scheduler's token
	// files) or "etcd" (created through the API).
	Source            string `json:"source,omitempty"`
	CreationTimestamp string `json:"creationTimestamp,omitempty"`
	// Token is the secret, set only in the answer that creates it.
	Token string `json:"token,omitempty"`
}

// APITokenList is the answer to listing tokens.
type APITokenList struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Items      []APIToken `json:"items"`
}

// AllNamespaces reports whether the token is limited to no namespace.
func (t *APIToken) AllNamespaces() bool { return len(t.Namespaces) == 0 }

// InNamespace reports whether the token may act in namespace ns.
func (t *APIToken) InNamespace(ns string) bool {
	if t.AllNamespaces() {
		return true
	}
	for _, n := range t.Namespaces {
		if n == ns {
			return true
		}
	}
	return false
}

// ValidateAPIToken checks a token's name, role and namespaces.
func ValidateAPIToken(t *APIToken) ErrorList {
	var errs ErrorList
	if err := ValidateName("name", t.Name, maxLabelLen); err != nil {
		errs = append(errs, err)
	}
	switch t.Role {
	case RoleAdmin, RoleReadOnly:
	case "":
		errs = append(errs, requiredErr("role", "say admin or read-only"))
	default:
		errs = append(errs, notSupportedErr("role", t.Role, Roles))
	}
	for i, ns := range t.Namespaces {
		if ns == "" || !IsDNSLabel(ns) {
			errs = append(errs, invalidErr("namespaces["+strconv.Itoa(i)+"]", ns,
				"a namespace is lowercase letters, digits and '-'; leave namespaces out for every namespace"))
		}
	}
	return errs
}
