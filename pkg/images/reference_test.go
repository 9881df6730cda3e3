package images

import (
	"strings"
	"testing"
)

func TestParseImageName(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	tests := []struct {
		image                   string
		repository, tag, digest string
		wantErr                 string
	}{
		{image: "busybox", repository: "docker.io/library/busybox"},
		{image: "busybox:1.36", repository: "docker.io/library/busybox", tag: "1.36"},
		{image: "library/busybox", repository: "docker.io/library/busybox"},
		{image: "docker.io/busybox", repository: "docker.io/library/busybox"},
		{image: "index.docker.io/foo/bar:1", repository: "docker.io/foo/bar", tag: "1"},
		{image: "foo/bar/baz:v1", repository: "docker.io/foo/bar/baz", tag: "v1"},
		{image: "localhost/foo", repository: "localhost/foo"},
		{image: "localhost:5000/foo:bar", repository: "localhost:5000/foo", tag: "bar"},
		{image: "registry.k8s.io/pause:3.10", repository: "registry.k8s.io/pause", tag: "3.10"},
		{image: "Foo/bar", repository: "Foo/bar"},
		{image: "[::1]:5000/foo", repository: "[::1]:5000/foo"},
		{image: "example.com/a_b/c__d/e---f:v1.0-rc_1", repository: "example.com/a_b/c__d/e---f", tag: "v1.0-rc_1"},
		{image: "foo:Tag_1", repository: "docker.io/library/foo", tag: "Tag_1"},
		{image: "foo@sha256:" + hex64, repository: "docker.io/library/foo", digest: "sha256:" + hex64},
		{image: "foo:1@sha256:" + hex64, repository: "docker.io/library/foo", tag: "1", digest: "sha256:" + hex64},
		{image: "host:5000/foo@sha512:" + strings.Repeat("cd", 64), repository: "host:5000/foo", digest: "sha512:" + strings.Repeat("cd", 64)},
		// A first component that is neither host nor path: the whole is the path.
		{image: "a_b.com/x", repository: "a_b.com/x"},

		{image: "", wantErr: `couldn't parse image name "": invalid reference format`},
		{image: "foo/Bar", wantErr: `couldn't parse image name "foo/Bar": invalid reference format: repository name (foo/Bar) must be lowercase`},
		{image: "UPPER", wantErr: "invalid reference format: repository name (library/UPPER) must be lowercase"},
		{image: hex64, wantErr: "invalid repository name (" + hex64 + "), cannot specify 64-byte hexadecimal strings"},
		{image: "foo:", wantErr: "invalid reference format"},
		{image: "foo//bar", wantErr: "invalid reference format"},
		{image: "foo..bar", wantErr: "invalid reference format"},
		{image: "foo._bar", wantErr: "invalid reference format"},
		{image: "-foo", wantErr: "invalid reference format"},
		{image: "foo bar", wantErr: "invalid reference format"},
		{image: "foo:.tag", wantErr: "invalid reference format"},
		{image: "foo:" + strings.Repeat("a", 129), wantErr: "invalid reference format"},
		{image: "example.com:abc/foo", wantErr: "invalid reference format"},
		{image: "foo@sha256:abc", wantErr: "invalid reference format"},
		{image: "foo@sha256:" + strings.ToUpper(hex64), wantErr: "invalid checksum digest format"},
		{image: "foo@sha384:" + hex64, wantErr: "invalid checksum digest length"},
		{image: "foo@md5:" + hex64, wantErr: "unsupported digest algorithm"},
		{image: "foo@SHA256:" + hex64, wantErr: "repository name (library/foo@SHA256) must be lowercase"},
		{image: "foo:1@SHA256:" + hex64, wantErr: "invalid checksum digest format"},
		{image: "a/" + strings.Repeat("b", 260), wantErr: "repository name must not be more than 255 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			n, err := parseImageName(tt.image)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if n.repository() != tt.repository || n.tag != tt.tag || n.digest != tt.digest {
				t.Errorf("got %q tag %q digest %q, want %q tag %q digest %q", n.repository(), n.tag, n.digest, tt.repository, tt.tag, tt.digest)
			}
		})
	}
}

func TestWithDefaultTag(t *testing.T) {
	hex64 := strings.Repeat("0f", 32)
	tests := []struct{ image, want string }{
		{"busybox", "busybox:latest"},
		{"busybox:1.36", "busybox:1.36"},
		{"busybox:latest", "busybox:latest"},
		{"localhost:5000/foo", "localhost:5000/foo:latest"},
		{"foo@sha256:" + hex64, "foo@sha256:" + hex64},
		{"foo:1@sha256:" + hex64, "foo:1@sha256:" + hex64},
	}
	for _, tt := range tests {
		n, err := parseImageName(tt.image)
		if err != nil {
			t.Fatalf("%s: %v", tt.image, err)
		}
		if got := withDefaultTag(tt.image, n); got != tt.want {
			t.Errorf("withDefaultTag(%q) = %q, want %q", tt.image, got, tt.want)
		}
	}
}
