// Command ociimage writes a single-layer linux/amd64 OCI image archive that
// `ctr images import` loads without any registry.
//
// The layer holds only what the flags name: files copied from the host,
// directories and symlinks, all owned by root. Parent directories are added
// with mode 0755 unless given with -dir. Entries are sorted and every mtime is
// the Unix epoch, so the same inputs always give the same image digest.
//
// Usage:
//
//	ociimage -name localhost/busybox:test -o busybox.tar \
//	    -file /bin/busybox:/bin/busybox:0755 -symlink /bin/sh:busybox \
//	    -dir /tmp:1777 -env PATH=/bin -cmd '["sh"]'
//
// -name must be fully qualified (a first component with a dot or a colon, or
// "localhost"): it is stored as is in the io.containerd.image.name annotation,
// and the CRI looks images up by their normalized name, so "busybox:test"
// would never be found as "docker.io/library/busybox:test". -entrypoint and
// -cmd take JSON arrays. -file, -symlink and -dir may be repeated; their paths
// cannot contain ':'. Not meant for large images: the layer is built in memory.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Media types and annotations of the OCI image spec and of containerd.
const (
	mediaTypeIndex     = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest  = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig    = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer     = "application/vnd.oci.image.layer.v1.tar"
	mediaTypeLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"

	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

// epoch is every entry's mtime: a real time would change the digest on each
// build.
var epoch = time.Unix(0, 0).UTC()

// entry is one file, directory or symlink of the layer.
type entry struct {
	name     string // relative to the root, cleaned, no trailing slash
	typ      byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode     int64  // permission bits plus setuid, setgid and sticky
	src      string // host file to copy, for tar.TypeReg
	linkname string // target, for tar.TypeSymlink
}

// image is everything the archive is built from.
type image struct {
	name       string // full reference, with tag
	tag        string
	entries    []entry
	gzip       bool
	entrypoint []string
	cmd        []string
	env        []string
	workdir    string
	user       string
}

// The JSON documents of the OCI image spec, reduced to the fields written.
type (
	descriptor struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Platform    *platform         `json:"platform,omitempty"`
	}
	platform struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
	}
	imageConfig struct {
		Architecture string          `json:"architecture"`
		OS           string          `json:"os"`
		Config       containerConfig `json:"config"`
		RootFS       rootFS          `json:"rootfs"`
	}
	containerConfig struct {
		User       string   `json:"User,omitempty"`
		Env        []string `json:"Env,omitempty"`
		Entrypoint []string `json:"Entrypoint,omitempty"`
		Cmd        []string `json:"Cmd,omitempty"`
		WorkingDir string   `json:"WorkingDir,omitempty"`
	}
	rootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	}
	manifest struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}
	index struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "ociimage: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	img, out, err := parseArgs(args, os.Stderr)
	if err != nil {
		return err
	}
	return writeFile(out, img)
}

// parseArgs turns the command line into an image and the output path. Usage
// and flag errors go to stderr.
func parseArgs(args []string, stderr io.Writer) (image, string, error) {
	var (
		img       image
		fs        = flag.NewFlagSet("ociimage", flag.ContinueOnError)
		name      = fs.String("name", "", "full image reference, e.g. localhost/busybox:test (tag defaults to latest)")
		out       = fs.String("o", "", "output archive path")
		entryJSON = fs.String("entrypoint", "", `entrypoint as a JSON array, e.g. '["/app"]'`)
		cmdJSON   = fs.String("cmd", "", `command as a JSON array, e.g. '["sh"]'`)
	)
	fs.SetOutput(stderr)
	fs.BoolVar(&img.gzip, "gzip", false, "gzip the layer (default: plain tar, whose digest does not depend on the Go version)")
	fs.StringVar(&img.workdir, "workdir", "", "working directory")
	fs.StringVar(&img.user, "user", "", "user, e.g. 65532 or 65532:65532")
	fs.Func("env", "KEY=VALUE environment variable (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("%q is not KEY=VALUE", v)
		}
		img.env = append(img.env, v)
		return nil
	})
	// entryFlag defines a repeatable flag that adds a layer entry.
	entryFlag := func(name, usage string, parse func(string) (entry, error)) {
		fs.Func(name, usage, func(v string) error {
			e, err := parse(v)
			if err != nil {
				return err
			}
			img.entries = append(img.entries, e)
			return nil
		})
	}
	entryFlag("file", "SRC:DEST[:MODE] host file to copy, octal MODE defaults to SRC's (repeatable)", parseFile)
	entryFlag("dir", "PATH[:MODE] directory, octal MODE defaults to 0755 (repeatable)", parseDir)
	entryFlag("symlink", "LINK:TARGET symlink (repeatable)", parseSymlink)
	if err := fs.Parse(args); err != nil {
		return image{}, "", err
	}
	if fs.NArg() > 0 {
		return image{}, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *out == "" {
		return image{}, "", errors.New("-o is required")
	}
	var err error
	if img.name, img.tag, err = parseName(*name); err != nil {
		return image{}, "", err
	}
	if img.entrypoint, err = parseArray("entrypoint", *entryJSON); err != nil {
		return image{}, "", err
	}
	if img.cmd, err = parseArray("cmd", *cmdJSON); err != nil {
		return image{}, "", err
	}
	return img, *out, nil
}

// The grammar of github.com/distribution/reference, simplified: the runtime
// would reject the image's name later, with a less helpful error.
var (
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagRE       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// parseName returns the full reference, with ":latest" added when it has no
// tag, and the tag alone.
func parseName(name string) (full, tag string, err error) {
	if name == "" {
		return "", "", errors.New("-name is required")
	}
	if strings.Contains(name, "@") {
		return "", "", fmt.Errorf("name %q: digest references are not supported", name)
	}
	domain, repo, ok := strings.Cut(name, "/")
	if !ok || (domain != "localhost" && !strings.ContainsAny(domain, ".:")) {
		return "", "", fmt.Errorf("name %q is not fully qualified (e.g. localhost/%s)", name, name)
	}
	repo, tag, ok = strings.Cut(repo, ":")
	if !ok {
		tag = "latest"
	}
	for _, c := range strings.Split(repo, "/") {
		if !componentRE.MatchString(c) {
			return "", "", fmt.Errorf("name %q: invalid repository component %q", name, c)
		}
	}
	if !tagRE.MatchString(tag) {
		return "", "", fmt.Errorf("name %q: invalid tag %q", name, tag)
	}
	return domain + "/" + repo + ":" + tag, tag, nil
}

func parseArray(flagName, v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var a []string
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		return nil, fmt.Errorf("-%s must be a JSON array of strings: %w", flagName, err)
	}
	return a, nil
}

func parseFile(v string) (entry, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return entry{}, fmt.Errorf("%q is not SRC:DEST[:MODE]", v)
	}
	name, err := layerPath(parts[1])
	if err != nil {
		return entry{}, err
	}
	fi, err := os.Stat(parts[0])
	if err != nil {
		return entry{}, fmt.Errorf("file source: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return entry{}, fmt.Errorf("file source %q is not a regular file", parts[0])
	}
	mode := int64(fi.Mode().Perm())
	if len(parts) == 3 {
		if mode, err = parseMode(parts[2]); err != nil {
			return entry{}, err
		}
	}
	return entry{name: name, typ: tar.TypeReg, mode: mode, src: parts[0]}, nil
}

func parseDir(v string) (entry, error) {
	p, m, hasMode := strings.Cut(v, ":")
	name, err := layerPath(p)
	if err != nil {
		return entry{}, err
	}
	mode := int64(0o755)
	if hasMode {
		if mode, err = parseMode(m); err != nil {
			return entry{}, err
		}
	}
	return entry{name: name, typ: tar.TypeDir, mode: mode}, nil
}

func parseSymlink(v string) (entry, error) {
	link, target, ok := strings.Cut(v, ":")
	if !ok || target == "" || strings.Contains(target, ":") {
		return entry{}, fmt.Errorf("%q is not LINK:TARGET", v)
	}
	name, err := layerPath(link)
	if err != nil {
		return entry{}, err
	}
	return entry{name: name, typ: tar.TypeSymlink, mode: 0o777, linkname: target}, nil
}

// layerPath turns an absolute path in the image into a tar entry name.
func layerPath(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("path %q in the image must be absolute", p)
	}
	name := strings.TrimPrefix(path.Clean(p), "/")
	if name == "" {
		return "", errors.New("the image root cannot be an entry")
	}
	return name, nil
}

// parseMode accepts octal permission bits with setuid, setgid and sticky,
// which tar stores in the same positions.
func parseMode(s string) (int64, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("mode %q is not octal within 7777", s)
	}
	return int64(m), nil
}

// withParents returns the entries sorted by name, each directory that holds
// an entry added with mode 0755 unless listed already. Sorting by name puts
// a directory before its contents, as extraction needs.
func withParents(entries []entry) ([]entry, error) {
	byName := make(map[string]entry)
	for _, e := range entries {
		if _, dup := byName[e.name]; dup {
			return nil, fmt.Errorf("/%s is given twice", e.name)
		}
		byName[e.name] = e
	}
	for _, e := range entries {
		for dir := path.Dir(e.name); dir != "."; dir = path.Dir(dir) {
			if p, ok := byName[dir]; ok {
				if p.typ != tar.TypeDir {
					return nil, fmt.Errorf("/%s holds /%s but is not a directory", dir, e.name)
				}
				continue
			}
			byName[dir] = entry{name: dir, typ: tar.TypeDir, mode: 0o755}
		}
	}
	all := make([]entry, 0, len(byName))
	for _, e := range byName {
		all = append(all, e)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	return all, nil
}

// buildLayer returns the layer tar.
func buildLayer(entries []entry) ([]byte, error) {
	all, err := withParents(entries)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range all {
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     e.name,
			Linkname: e.linkname,
			Mode:     e.mode,
			ModTime:  epoch,
		}
		var data []byte
		switch e.typ {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			if data, err = os.ReadFile(e.src); err != nil {
				return nil, fmt.Errorf("read /%s: %w", e.name, err)
			}
			hdr.Size = int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write /%s: %w", e.name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("write /%s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer: %w", err)
	}
	return buf.Bytes(), nil
}

// gzipBytes compresses b with a header that holds no name or time, so the
// output depends on b alone (for one Go version).
func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return buf.Bytes(), nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// writeArchive writes img to w as an OCI image layout in a tar, and returns
// the manifest's digest.
func writeArchive(w io.Writer, img image) (string, error) {
	layer, err := buildLayer(img.entries)
	if err != nil {
		return "", err
	}
	diffID := digestOf(layer)
	layerType := mediaTypeLayer
	if img.gzip {
		if layer, err = gzipBytes(layer); err != nil {
			return "", err
		}
		layerType = mediaTypeLayerGzip
	}

	blobs := make(map[string][]byte)
	add := func(mediaType string, b []byte) descriptor {
		d := descriptor{MediaType: mediaType, Digest: digestOf(b), Size: int64(len(b))}
		blobs[d.Digest] = b
		return d
	}
	config, err := json.Marshal(imageConfig{
		Architecture: "amd64",
		OS:           "linux",
		Config: containerConfig{
			User:       img.user,
			Env:        img.env,
			Entrypoint: img.entrypoint,
			Cmd:        img.cmd,
			WorkingDir: img.workdir,
		},
		RootFS: rootFS{Type: "layers", DiffIDs: []string{diffID}},
	})
	if err != nil {
		return "", fmt.Errorf("encode config: %w", err)
	}
	mfst, err := json.Marshal(manifest{
		SchemaVersion: 2,
		MediaType:     mediaTypeManifest,
		Config:        add(mediaTypeConfig, config),
		Layers:        []descriptor{add(layerType, layer)},
	})
	if err != nil {
		return "", fmt.Errorf("encode manifest: %w", err)
	}
	mfstDesc := add(mediaTypeManifest, mfst)
	// containerd names the image after io.containerd.image.name; the bare
	// tag in ref.name is what other OCI tools read.
	mfstDesc.Annotations = map[string]string{
		annotationImageName: img.name,
		annotationRefName:   img.tag,
	}
	mfstDesc.Platform = &platform{Architecture: "amd64", OS: "linux"}
	idx, err := json.Marshal(index{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: []descriptor{mfstDesc}})
	if err != nil {
		return "", fmt.Errorf("encode index: %w", err)
	}

	files := map[string][]byte{
		"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"index.json": idx,
	}
	for d, b := range blobs {
		files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")] = b
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)

	tw := tar.NewWriter(w)
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch}); err != nil {
			return "", fmt.Errorf("write archive: %w", err)
		}
	}
	for _, n := range names {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", fmt.Errorf("write archive: %w", err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			return "", fmt.Errorf("write archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("write archive: %w", err)
	}
	return mfstDesc.Digest, nil
}

// writeFile writes the archive next to out and renames it into place, so
// that an interrupted build never leaves a truncated archive behind.
func writeFile(out string, img image) (err error) {
	f, err := os.CreateTemp(filepath.Dir(out), ".ociimage-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = writeArchive(f, img); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}
