package devcluster

import (
	"encoding/json"
	"fmt"
	"os"
)

// LoadCredentials reads a credentials file in the JSON form Mesos'
// --credentials takes: {"credentials": [{"principal": "p", "secret": "s"}]}.
func LoadCredentials(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	var f struct {
		Credentials []struct {
			Principal string `json:"principal"`
			Secret    string `json:"secret"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("credentials file %s: %w (want {\"credentials\": [{\"principal\": ..., \"secret\": ...}]})", path, err)
	}
	out := map[string]string{}
	for i, c := range f.Credentials {
		if c.Principal == "" || c.Secret == "" {
			return nil, fmt.Errorf("credentials file %s: credentials[%d] needs a principal and a secret", path, i)
		}
		out[c.Principal] = c.Secret
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("credentials file %s lists no credentials", path)
	}
	return out, nil
}
