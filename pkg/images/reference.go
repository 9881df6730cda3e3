package images

import (
	"errors"
	"fmt"
	"strings"
)

// The docker reference grammar, as github.com/distribution/reference parses
// it for the kubelet (ParseNormalizedNamed). Written by hand rather than as
// regular expressions so that each rule reads, and is tested, on its own.
const (
	dockerHubDomain       = "docker.io"
	legacyDockerHubDomain = "index.docker.io"
	officialRepoPrefix    = "library/"
	localhostDomain       = "localhost"
	defaultTag            = "latest"
	maxRepositoryNameLen  = 255
	maxTagLen             = 128
)

// imageName is a parsed, normalised image reference.
type imageName struct {
	// domain is the registry host[:port]; "docker.io" for Docker Hub, empty
	// only for the rare name whose first component is not a valid host.
	domain string
	// path is the repository inside the registry, "library/busybox".
	path string
	// tag and digest are empty when the reference has none.
	tag    string
	digest string
}

// repository is the fully qualified repository name, the string registry
// credentials are matched against.
func (n imageName) repository() string {
	if n.domain == "" {
		return n.path
	}
	return n.domain + "/" + n.path
}

// parseImageName parses image as the kubelet does before pulling it; its
// error text is the kubelet's.
func parseImageName(image string) (imageName, error) {
	n, err := parseNormalizedName(image)
	if err != nil {
		return imageName{}, fmt.Errorf("couldn't parse image name %q: %w", image, err)
	}
	return n, nil
}

// withDefaultTag returns image with ":latest" appended when it names
// neither a tag nor a digest. The name is not otherwise rewritten (no
// docker.io/library/ prefix), to leave registry defaults to the runtime.
func withDefaultTag(image string, n imageName) string {
	if n.tag == "" && n.digest == "" {
		return image + ":" + defaultTag
	}
	return image
}

// parseNormalizedName parses a "familiar" reference (busybox, foo/bar:1,
// registry:5000/x@sha256:...) into its canonical parts.
func parseNormalizedName(s string) (imageName, error) {
	if isLowerHex(s) && len(s) == 64 {
		return imageName{}, fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, remainder := splitDockerDomain(s)
	remote, _, _ := strings.Cut(remainder, ":")
	if strings.ToLower(remote) != remote {
		return imageName{}, fmt.Errorf("invalid reference format: repository name (%s) must be lowercase", remote)
	}
	return parseReference(domain + "/" + remainder)
}

// splitDockerDomain tells the registry from the repository: the first
// component is a registry when it is localhost, or contains '.' or ':', or
// has upper case (repositories cannot); otherwise the image is on Docker
// Hub, where one-component names live under library/.
func splitDockerDomain(name string) (domain, remainder string) {
	first, rest, ok := strings.Cut(name, "/")
	switch {
	case !ok:
		return dockerHubDomain, officialRepoPrefix + name
	case first == localhostDomain:
		domain, remainder = first, rest
	case first == legacyDockerHubDomain:
		domain, remainder = dockerHubDomain, rest
	case strings.ContainsAny(first, ".:"), strings.ToLower(first) != first:
		domain, remainder = first, rest
	default:
		domain, remainder = dockerHubDomain, name
	}
	if domain == dockerHubDomain && !strings.Contains(remainder, "/") {
		remainder = officialRepoPrefix + remainder
	}
	return domain, remainder
}

// parseReference parses a canonical reference, domain/path[:tag][@digest].
func parseReference(s string) (imageName, error) {
	n, ok := matchReference(s)
	if !ok {
		switch {
		case s == "":
			return imageName{}, errors.New("repository name must have at least one component")
		case isMatch(strings.ToLower(s)):
			return imageName{}, errors.New("repository name must be lowercase")
		default:
			return imageName{}, errors.New("invalid reference format")
		}
	}
	if len(n.path) > maxRepositoryNameLen {
		return imageName{}, fmt.Errorf("repository name must not be more than %d characters", maxRepositoryNameLen)
	}
	if n.digest != "" {
		if err := validateDigest(n.digest); err != nil {
			return imageName{}, err
		}
	}
	return n, nil
}

func isMatch(s string) bool {
	_, ok := matchReference(s)
	return ok
}

// matchReference splits s by the grammar name[:tag][@digest] and reports
// whether every part is well formed.
func matchReference(s string) (imageName, bool) {
	nameTag, digest, hasDigest := strings.Cut(s, "@")
	if hasDigest && !isDigestSyntax(digest) {
		return imageName{}, false
	}
	name, tag := nameTag, ""
	// Only a domain's port may also hold a ':', and a '/' always follows it.
	if i := strings.LastIndexByte(nameTag, ':'); i >= 0 && !strings.Contains(nameTag[i+1:], "/") {
		name, tag = nameTag[:i], nameTag[i+1:]
		if !isTag(tag) {
			return imageName{}, false
		}
	}
	domain, path, ok := splitName(name)
	if !ok {
		return imageName{}, false
	}
	return imageName{domain: domain, path: path, tag: tag, digest: digest}, true
}

// splitName prefers reading the first component as a domain, and falls
// back to reading the whole name as a repository path.
func splitName(name string) (domain, path string, ok bool) {
	if first, rest, found := strings.Cut(name, "/"); found && isDomain(first) && isRemoteName(rest) {
		return first, rest, true
	}
	if isRemoteName(name) {
		return "", name, true
	}
	return "", "", false
}

// isDomain reports whether s is host[:port], host being DNS labels or a
// bracketed IPv6 address.
func isDomain(s string) bool {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 || !isIPv6Chars(s[1:end]) {
			return false
		}
		rest := s[end+1:]
		return rest == "" || rest[0] == ':' && isDigits(rest[1:])
	}
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort && !isDigits(port) {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if !isDomainLabel(label) {
			return false
		}
	}
	return true
}

// isDomainLabel: letters, digits and inner hyphens.
func isDomainLabel(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func isRemoteName(s string) bool {
	for _, c := range strings.Split(s, "/") {
		if !isPathComponent(c) {
			return false
		}
	}
	return true
}

// isPathComponent: runs of [a-z0-9] joined by one separator each, a
// separator being ".", "_", "__" or any number of "-".
func isPathComponent(s string) bool {
	i := 0
	for {
		j := i
		for j < len(s) && isLowerAlnum(s[j]) {
			j++
		}
		if j == i {
			return false
		}
		if j == len(s) {
			return true
		}
		k := j
		for k < len(s) && !isLowerAlnum(s[k]) {
			k++
		}
		if !isSeparator(s[j:k]) {
			return false
		}
		i = k
	}
}

func isSeparator(s string) bool {
	switch s {
	case ".", "_", "__":
		return true
	}
	return s != "" && strings.Trim(s, "-") == ""
}

// isTag: a word character, then up to 127 word characters, dots or hyphens.
func isTag(s string) bool {
	if s == "" || len(s) > maxTagLen || !isWord(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isWord(s[i]) && s[i] != '.' && s[i] != '-' {
			return false
		}
	}
	return true
}

// isDigestSyntax is the grammar's loose digest shape, algorithm:hex with at
// least 32 hex digits; validateDigest then checks it for real.
func isDigestSyntax(s string) bool {
	algorithm, encoded, ok := strings.Cut(s, ":")
	if !ok || len(encoded) < 32 || !isHex(encoded) {
		return false
	}
	// Components start with a letter and are joined by one of -_+.
	start := true
	for i := 0; i < len(algorithm); i++ {
		c := algorithm[i]
		switch {
		case start:
			if !isLetter(c) {
				return false
			}
			start = false
		case c == '-' || c == '_' || c == '+' || c == '.':
			start = true
		case !isAlnum(c):
			return false
		}
	}
	return !start
}

// validateDigest checks the algorithm is one the kubelet links in (sha256,
// sha384, sha512) and the hex has its length, as go-digest does.
func validateDigest(s string) error {
	algorithm, encoded, _ := strings.Cut(s, ":")
	var size int
	switch algorithm {
	case "sha256":
		size = 64
	case "sha384":
		size = 96
	case "sha512":
		size = 128
	default:
		if strings.ToLower(algorithm) != algorithm {
			return errors.New("invalid checksum digest format")
		}
		return errors.New("unsupported digest algorithm")
	}
	if len(encoded) != size {
		return errors.New("invalid checksum digest length")
	}
	if !isLowerHex(encoded) {
		return errors.New("invalid checksum digest format")
	}
	return nil
}

func isLetter(c byte) bool       { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool        { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool        { return isLetter(c) || isDigit(c) }
func isLowerAlnum(c byte) bool   { return 'a' <= c && c <= 'z' || isDigit(c) }
func isWord(c byte) bool         { return isAlnum(c) || c == '_' }
func isLowerHexByte(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' }

func isDigits(s string) bool { return s != "" && all(s, isDigit) }
func isHex(s string) bool {
	return all(s, func(c byte) bool { return isLowerHexByte(c) || 'A' <= c && c <= 'F' })
}
func isLowerHex(s string) bool { return s != "" && all(s, isLowerHexByte) }
func isIPv6Chars(s string) bool {
	return s != "" && all(s, func(c byte) bool { return c == ':' || isLowerHexByte(c) || 'A' <= c && c <= 'F' })
}

func all(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}
