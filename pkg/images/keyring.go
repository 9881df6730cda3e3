package images

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// credential is one registry login taken from a pull secret.
type credential struct {
	// key is the registry it is for, host[:port][/path] with no scheme;
	// host labels may be globs ("*.example.com").
	key                string
	username, password string
	// secret is namespace/name, for logs.
	secret string
}

// dockerConfigEntry is one registry's entry in a docker config.
type dockerConfigEntry struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

// credentialsFromSecrets reads the docker configs in secrets. Secrets of
// other types, or with the data key missing or empty, are skipped; a config
// that does not parse fails the whole lookup, as in the kubelet, so the
// owner sees it instead of a confusing anonymous pull failure.
func credentialsFromSecrets(secrets []v1.Secret) ([]credential, error) {
	var creds []credential
	for i := range secrets {
		s := &secrets[i]
		var entries map[string]dockerConfigEntry
		var err error
		switch data := s.Data; {
		case s.Type == v1.SecretTypeDockerConfigJson && len(data[v1.DockerConfigJsonKey]) > 0:
			var cfg struct {
				Auths map[string]dockerConfigEntry `json:"auths"`
			}
			err = json.Unmarshal(data[v1.DockerConfigJsonKey], &cfg)
			entries = cfg.Auths
		case s.Type == v1.SecretTypeDockercfg && len(data[v1.DockerConfigKey]) > 0:
			err = json.Unmarshal(data[v1.DockerConfigKey], &entries)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("invalid pull secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		// Sorted so that two entries normalising to one key keep an order.
		for _, raw := range slices.Sorted(maps.Keys(entries)) {
			c, err := newCredential(raw, entries[raw])
			if err != nil {
				return nil, fmt.Errorf("invalid pull secret %s/%s, registry %q: %w", s.Namespace, s.Name, raw, err)
			}
			if c.key == "" {
				continue
			}
			c.secret = s.Namespace + "/" + s.Name
			creds = append(creds, c)
		}
	}
	return creds, nil
}

// newCredential decodes one entry; a key that is not a URL yields an empty
// key (the kubelet ignores such entries).
func newCredential(raw string, e dockerConfigEntry) (credential, error) {
	c := credential{key: registryKey(raw), username: e.Username, password: e.Password}
	if e.Auth != "" {
		var err error
		if c.username, c.password, err = decodeAuth(e.Auth); err != nil {
			return credential{}, err
		}
	}
	return c, nil
}

// registryKey normalises a docker config key to host[:port][/path]: the
// scheme goes, and a /v1/ or /v2/ API prefix means the registry itself.
func registryKey(raw string) string {
	if !strings.HasPrefix(raw, "https://") && !strings.HasPrefix(raw, "http://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	p := u.Path
	if strings.HasPrefix(p, "/v2/") || strings.HasPrefix(p, "/v1/") {
		p = p[3:]
	}
	if p == "" || p == "/" {
		return u.Host
	}
	return u.Host + p
}

// decodeAuth decodes the "auth" field, base64 of user:password, padded or
// not.
func decodeAuth(field string) (username, password string, err error) {
	enc := base64.RawStdEncoding
	if strings.HasSuffix(strings.TrimSpace(field), "=") {
		enc = base64.StdEncoding
	}
	decoded, err := enc.DecodeString(field)
	if err != nil {
		return "", "", fmt.Errorf("decode auth field: %w", err)
	}
	username, password, ok := strings.Cut(string(decoded), ":")
	if !ok {
		return "", "", errors.New("unable to parse auth field, must be formatted as base64(username:password)")
	}
	return username, password, nil
}

// matchCredentials returns the credentials to try for repository
// (domain/path), most specific registry key first, as the kubelet's keyring:
// every key matching host, port and path prefix, in reverse lexical order;
// failing that, for a Docker Hub image, the credentials for index.docker.io.
func matchCredentials(creds []credential, repository string) []credential {
	keys := make([]string, 0, len(creds))
	for _, c := range creds {
		keys = append(keys, c.key)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(b, a) })
	keys = slices.Compact(keys)

	var out []credential
	for _, k := range keys {
		if registryMatches(k, repository) {
			out = append(out, withKey(creds, k)...)
		}
	}
	if len(out) == 0 && isDockerHub(repository) {
		out = withKey(creds, legacyDockerHubDomain)
	}
	return out
}

func withKey(creds []credential, key string) []credential {
	var out []credential
	for _, c := range creds {
		if c.key == key {
			out = append(out, c)
		}
	}
	return out
}

// registryMatches reports whether key covers repository: the same port, the
// same number of host labels each matching the key's (glob) label, and the
// key's path a string prefix of the repository's path.
func registryMatches(key, repository string) bool {
	k, err := url.Parse("https://" + key)
	if err != nil {
		return false
	}
	r, err := url.Parse("https://" + repository)
	if err != nil {
		return false
	}
	kLabels, kPort := splitHost(k.Host)
	rLabels, rPort := splitHost(r.Host)
	if kPort != rPort || len(kLabels) != len(rLabels) || !strings.HasPrefix(r.Path, k.Path) {
		return false
	}
	for i, pattern := range kLabels {
		if ok, err := path.Match(pattern, rLabels[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

func splitHost(hostport string) (labels []string, port string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	return strings.Split(host, "."), port
}

// isDockerHub reports whether repository is pulled from Docker Hub: its
// first component is docker.io or index.docker.io, or does not look like a
// host at all.
func isDockerHub(repository string) bool {
	first, _, hasPath := strings.Cut(repository, "/")
	switch {
	case first == "":
		return false
	case !hasPath, first == dockerHubDomain, first == legacyDockerHubDomain:
		return true
	}
	return !strings.ContainsAny(first, ".:")
}

// authConfigs converts credentials to what the CRI pull takes.
func authConfigs(creds []credential) []*runtimeapi.AuthConfig {
	out := make([]*runtimeapi.AuthConfig, 0, len(creds))
	for _, c := range creds {
		out = append(out, &runtimeapi.AuthConfig{Username: c.username, Password: c.password})
	}
	return out
}
