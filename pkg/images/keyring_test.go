package images

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestRegistryKey(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"registry.example.com", "registry.example.com"},
		{"https://registry.example.com", "registry.example.com"},
		{"http://registry.example.com:5000", "registry.example.com:5000"},
		{"https://index.docker.io/v1/", "index.docker.io"},
		{"registry.example.com/v2/team", "registry.example.com/team"},
		{"registry.example.com/team/", "registry.example.com/team/"},
		{"*.example.com", "*.example.com"},
		{"bad host", ""},
	}
	for _, tt := range tests {
		if got := registryKey(tt.raw); got != tt.want {
			t.Errorf("registryKey(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestDecodeAuth(t *testing.T) {
	tests := []struct {
		field, user, pass string
		wantErr           bool
	}{
		{field: base64.StdEncoding.EncodeToString([]byte("alice:s3cret")), user: "alice", pass: "s3cret"},
		{field: base64.RawStdEncoding.EncodeToString([]byte("bob:pa:ss")), user: "bob", pass: "pa:ss"},
		{field: base64.StdEncoding.EncodeToString([]byte("nocolon")), wantErr: true},
		{field: "!!!", wantErr: true},
	}
	for _, tt := range tests {
		user, pass, err := decodeAuth(tt.field)
		if (err != nil) != tt.wantErr || user != tt.user || pass != tt.pass {
			t.Errorf("decodeAuth(%q) = %q, %q, %v; want %q, %q, error %v", tt.field, user, pass, err, tt.user, tt.pass, tt.wantErr)
		}
	}
}

func TestRegistryMatches(t *testing.T) {
	tests := []struct {
		key, repository string
		want            bool
	}{
		{"registry.example.com", "registry.example.com/team/app", true},
		{"registry.example.com", "other.example.com/team/app", false},
		{"registry.example.com/team", "registry.example.com/team/app", true},
		{"registry.example.com/team", "registry.example.com/other/app", false},
		// The path is a string prefix, as in the kubelet.
		{"registry.example.com/team", "registry.example.com/teamwork/app", true},
		{"registry.example.com:5000", "registry.example.com:5000/app", true},
		{"registry.example.com:5000", "registry.example.com/app", false},
		{"registry.example.com", "registry.example.com:5000/app", false},
		{"*.example.com", "registry.example.com/app", true},
		{"*.example.com", "example.com/app", false},
		{"*.example.com", "a.b.example.com/app", false},
		{"registry.*.com", "registry.example.com/app", true},
		{"docker.io", "docker.io/library/busybox", true},
		{"index.docker.io", "docker.io/library/busybox", false},
		{"[::1]:5000", "[::1]:5000/app", true},
	}
	for _, tt := range tests {
		if got := registryMatches(tt.key, tt.repository); got != tt.want {
			t.Errorf("registryMatches(%q, %q) = %v, want %v", tt.key, tt.repository, got, tt.want)
		}
	}
}

func TestIsDockerHub(t *testing.T) {
	tests := []struct {
		repository string
		want       bool
	}{
		{"docker.io/library/busybox", true},
		{"index.docker.io/foo/bar", true},
		{"busybox", true},
		{"team/app", true},
		{"registry.example.com/app", false},
		{"localhost:5000/app", false},
		{"/app", false},
	}
	for _, tt := range tests {
		if got := isDockerHub(tt.repository); got != tt.want {
			t.Errorf("isDockerHub(%q) = %v, want %v", tt.repository, got, tt.want)
		}
	}
}

func dockerConfigJSONSecret(name, config string) v1.Secret {
	s := v1.Secret{Type: v1.SecretTypeDockerConfigJson, Data: map[string][]byte{v1.DockerConfigJsonKey: []byte(config)}}
	s.Namespace, s.Name = "ns", name
	return s
}

func dockercfgSecret(name, config string) v1.Secret {
	s := v1.Secret{Type: v1.SecretTypeDockercfg, Data: map[string][]byte{v1.DockerConfigKey: []byte(config)}}
	s.Namespace, s.Name = "ns", name
	return s
}

func TestCredentialsFromSecrets(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("carol:fromauth"))
	tests := []struct {
		name    string
		secrets []v1.Secret
		want    []credential
		wantErr string
	}{{
		name: "dockerconfigjson with username and password",
		secrets: []v1.Secret{dockerConfigJSONSecret("a",
			`{"auths":{"https://registry.example.com":{"username":"alice","password":"pw"}}}`)},
		want: []credential{{key: "registry.example.com", username: "alice", password: "pw", secret: "ns/a"}},
	}, {
		name:    "dockercfg with auth field, which wins over username",
		secrets: []v1.Secret{dockercfgSecret("b", `{"registry.example.com:5000":{"username":"x","auth":"`+auth+`"}}`)},
		want:    []credential{{key: "registry.example.com:5000", username: "carol", password: "fromauth", secret: "ns/b"}},
	}, {
		name: "other types and empty data are skipped",
		secrets: []v1.Secret{
			{Type: v1.SecretTypeOpaque, Data: map[string][]byte{v1.DockerConfigJsonKey: []byte(`{"auths":{"x.io":{}}}`)}},
			{Type: v1.SecretTypeDockerConfigJson, Data: map[string][]byte{v1.DockerConfigJsonKey: nil}},
			// Type and key must agree.
			{Type: v1.SecretTypeDockercfg, Data: map[string][]byte{v1.DockerConfigJsonKey: []byte(`{"auths":{"x.io":{}}}`)}},
		},
	}, {
		name: "entries of one secret in key order, unparsable keys dropped",
		secrets: []v1.Secret{dockerConfigJSONSecret("c",
			`{"auths":{"z.example.com":{"username":"z"},"a.example.com":{"username":"a"},"bad host":{"username":"b"}}}`)},
		want: []credential{
			{key: "a.example.com", username: "a", secret: "ns/c"},
			{key: "z.example.com", username: "z", secret: "ns/c"},
		},
	}, {
		name:    "malformed json fails",
		secrets: []v1.Secret{dockerConfigJSONSecret("d", `{"auths":`)},
		wantErr: "invalid pull secret ns/d",
	}, {
		name:    "malformed auth field fails",
		secrets: []v1.Secret{dockercfgSecret("e", `{"x.io":{"auth":"bm9jb2xvbg=="}}`)},
		wantErr: "must be formatted as base64(username:password)",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := credentialsFromSecrets(tt.secrets)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMatchCredentials(t *testing.T) {
	creds := []credential{
		{key: "registry.example.com", username: "host"},
		{key: "registry.example.com/team", username: "team"},
		{key: "registry.example.com/team/app", username: "app"},
		{key: "*.example.com", username: "glob"},
		{key: "registry.example.com", username: "host2"},
		{key: "index.docker.io", username: "hub"},
		{key: "other.io", username: "other"},
	}
	tests := []struct {
		repository string
		want       []string
	}{
		// Most specific key first; credentials of one key in secret order.
		{"registry.example.com/team/app", []string{"app", "team", "host", "host2", "glob"}},
		{"registry.example.com/solo", []string{"host", "host2", "glob"}},
		{"mirror.example.com/x", []string{"glob"}},
		// Docker Hub images fall back to index.docker.io.
		{"docker.io/library/busybox", []string{"hub"}},
		{"unknown.io/x", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, c := range matchCredentials(creds, tt.repository) {
			got = append(got, c.username)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("matchCredentials(%q) = %v, want %v", tt.repository, got, tt.want)
		}
	}
}
