package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testArgs builds a small image from files in a fresh temporary directory.
func testArgs(t *testing.T, extra ...string) []string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "busybox")
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(bin, []byte("#!fake binary\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return append([]string{
		"-name", "localhost/busybox:test",
		"-o", filepath.Join(dir, "out.tar"),
		"-file", bin + ":/bin/busybox",
		"-file", passwd + ":/etc/passwd:0644",
		"-symlink", "/bin/sh:busybox",
		"-dir", "/tmp:1777",
		"-dir", "/root:0700",
		"-entrypoint", `["/bin/sh","-c"]`,
		"-cmd", `["echo hi"]`,
		"-env", "PATH=/bin",
		"-env", "A=b=c",
		"-workdir", "/root",
		"-user", "0:0",
	}, extra...)
}

func build(t *testing.T, args []string) ([]byte, string) {
	t.Helper()
	img, _, err := parseArgs(args, io.Discard)
	if err != nil {
		t.Fatalf("parseArgs: %v", err)
	}
	var buf bytes.Buffer
	dgst, err := writeArchive(&buf, img)
	if err != nil {
		t.Fatalf("writeArchive: %v", err)
	}
	return buf.Bytes(), dgst
}

// untar returns the regular files of a tar by name, and the names of all
// entries in order.
func untar(t *testing.T, b []byte) (map[string][]byte, []*tar.Header) {
	t.Helper()
	files := make(map[string][]byte)
	var hdrs []*tar.Header
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, hdrs
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		hdrs = append(hdrs, hdr)
		if hdr.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[hdr.Name] = data
		}
	}
}

// blob returns the blob a descriptor points at and checks its digest and size.
func blob(t *testing.T, files map[string][]byte, d descriptor) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
	if !ok {
		t.Fatalf("blob %s missing", d.Digest)
	}
	if got := digestOf(b); got != d.Digest {
		t.Fatalf("blob %s has digest %s", d.Digest, got)
	}
	if int64(len(b)) != d.Size {
		t.Fatalf("blob %s has size %d, descriptor says %d", d.Digest, len(b), d.Size)
	}
	return b
}

func TestArchive(t *testing.T) {
	for _, gz := range []bool{false, true} {
		var extra []string
		if gz {
			extra = []string{"-gzip"}
		}
		archive, mfstDigest := build(t, testArgs(t, extra...))
		files, _ := untar(t, archive)

		if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
			t.Errorf("oci-layout = %s", got)
		}
		var idx index
		if err := json.Unmarshal(files["index.json"], &idx); err != nil {
			t.Fatalf("index.json: %v", err)
		}
		if idx.SchemaVersion != 2 || idx.MediaType != mediaTypeIndex || len(idx.Manifests) != 1 {
			t.Fatalf("index = %+v", idx)
		}
		md := idx.Manifests[0]
		if md.Digest != mfstDigest || md.MediaType != mediaTypeManifest {
			t.Errorf("manifest descriptor = %+v, want digest %s", md, mfstDigest)
		}
		wantAnn := map[string]string{annotationImageName: "localhost/busybox:test", annotationRefName: "test"}
		if !reflect.DeepEqual(md.Annotations, wantAnn) {
			t.Errorf("annotations = %v, want %v", md.Annotations, wantAnn)
		}
		if md.Platform == nil || *md.Platform != (platform{Architecture: "amd64", OS: "linux"}) {
			t.Errorf("platform = %+v", md.Platform)
		}

		var m manifest
		if err := json.Unmarshal(blob(t, files, md), &m); err != nil {
			t.Fatalf("manifest: %v", err)
		}
		if m.SchemaVersion != 2 || m.Config.MediaType != mediaTypeConfig || len(m.Layers) != 1 {
			t.Fatalf("manifest = %+v", m)
		}
		var cfg imageConfig
		if err := json.Unmarshal(blob(t, files, m.Config), &cfg); err != nil {
			t.Fatalf("config: %v", err)
		}
		wantCC := containerConfig{
			User:       "0:0",
			Env:        []string{"PATH=/bin", "A=b=c"},
			Entrypoint: []string{"/bin/sh", "-c"},
			Cmd:        []string{"echo hi"},
			WorkingDir: "/root",
		}
		if cfg.OS != "linux" || cfg.Architecture != "amd64" || !reflect.DeepEqual(cfg.Config, wantCC) {
			t.Errorf("config = %+v", cfg)
		}

		layer := blob(t, files, m.Layers[0])
		wantType := mediaTypeLayer
		if gz {
			wantType = mediaTypeLayerGzip
			zr, err := gzip.NewReader(bytes.NewReader(layer))
			if err != nil {
				t.Fatal(err)
			}
			if layer, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if m.Layers[0].MediaType != wantType {
			t.Errorf("layer media type = %s, want %s", m.Layers[0].MediaType, wantType)
		}
		if cfg.RootFS.Type != "layers" || !reflect.DeepEqual(cfg.RootFS.DiffIDs, []string{digestOf(layer)}) {
			t.Errorf("rootfs = %+v, want diff_id %s", cfg.RootFS, digestOf(layer))
		}
		checkLayer(t, layer)
	}
}

func checkLayer(t *testing.T, layer []byte) {
	t.Helper()
	type item struct {
		name     string
		typ      byte
		mode     int64
		linkname string
	}
	want := []item{
		{"bin/", tar.TypeDir, 0o755, ""},
		{"bin/busybox", tar.TypeReg, 0o755, ""},
		{"bin/sh", tar.TypeSymlink, 0o777, "busybox"},
		{"etc/", tar.TypeDir, 0o755, ""},
		{"etc/passwd", tar.TypeReg, 0o644, ""},
		{"root/", tar.TypeDir, 0o700, ""},
		{"tmp/", tar.TypeDir, 0o1777, ""},
	}
	files, hdrs := untar(t, layer)
	var got []item
	for _, h := range hdrs {
		got = append(got, item{h.Name, h.Typeflag, h.Mode, h.Linkname})
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d", h.Name, h.ModTime, h.Uid, h.Gid)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layer entries:\n got %v\nwant %v", got, want)
	}
	if string(files["etc/passwd"]) != "root:x:0:0:root:/root:/bin/sh\n" {
		t.Errorf("etc/passwd = %q", files["etc/passwd"])
	}
}

// TestDeterministic rebuilds from the same inputs, with the sources' mtimes
// and the flag order changed, and expects the same bytes.
func TestDeterministic(t *testing.T) {
	for _, gz := range []string{"-gzip=false", "-gzip=true"} {
		args := testArgs(t, gz)
		first, d1 := build(t, args)

		later := time.Now().Add(time.Hour)
		for _, a := range args {
			if src, _, ok := strings.Cut(a, ":"); ok && filepath.IsAbs(src) {
				if _, err := os.Stat(src); err == nil {
					if err := os.Chtimes(src, later, later); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		// Swap the two -file flags: entry order must not depend on flag order.
		swapped := append([]string(nil), args...)
		swapped[5], swapped[7] = swapped[7], swapped[5]
		second, d2 := build(t, swapped)

		if d1 != d2 || !bytes.Equal(first, second) {
			t.Errorf("%s: rebuild differs: manifest %s vs %s", gz, d1, d2)
		}
	}
}

func TestWriteFile(t *testing.T) {
	args := testArgs(t)
	if err := run(args); err != nil {
		t.Fatalf("run: %v", err)
	}
	out := args[3]
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := build(t, args)
	if !bytes.Equal(b, want) {
		t.Error("written archive differs from writeArchive output")
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".ociimage-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		in, full, tag string
		wantErr       bool
	}{
		{in: "localhost/busybox:test", full: "localhost/busybox:test", tag: "test"},
		{in: "localhost/pause", full: "localhost/pause:latest", tag: "latest"},
		{in: "localhost:5000/a/b:v1.2", full: "localhost:5000/a/b:v1.2", tag: "v1.2"},
		{in: "example.com/app:1", full: "example.com/app:1", tag: "1"},
		{in: "busybox:test", wantErr: true},
		{in: "library/busybox", wantErr: true},
		{in: "localhost/x@sha256:0000", wantErr: true},
		{in: "localhost/x:bad/tag", wantErr: true},
		{in: "localhost/x:", wantErr: true},
		{in: "localhost/Upper:1", wantErr: true},
		{in: "localhost//x:1", wantErr: true},
		{in: "", wantErr: true},
	} {
		full, tag, err := parseName(tc.in)
		if (err != nil) != tc.wantErr || full != tc.full || tag != tc.tag {
			t.Errorf("parseName(%q) = %q, %q, %v; want %q, %q, error %v", tc.in, full, tag, err, tc.full, tc.tag, tc.wantErr)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "f")
	if err := os.WriteFile(src, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"-name", "localhost/x:y", "-o", filepath.Join(dir, "out.tar")}
	for name, extra := range map[string][]string{
		"relative dest":      {"-file", src + ":etc/f"},
		"missing source":     {"-file", filepath.Join(dir, "nope") + ":/f"},
		"source is a dir":    {"-file", dir + ":/f"},
		"bad mode":           {"-file", src + ":/f:0999"},
		"mode too big":       {"-dir", "/d:17777"},
		"too many colons":    {"-file", src + ":/f:0644:x"},
		"root as entry":      {"-dir", "/"},
		"symlink no target":  {"-symlink", "/bin/sh"},
		"env without equals": {"-env", "PATH"},
		"cmd not JSON":       {"-cmd", "sh"},
		"entrypoint object":  {"-entrypoint", `{"a":1}`},
		"positional arg":     {"extra"},
	} {
		if _, _, err := parseArgs(append(append([]string(nil), base...), extra...), io.Discard); err == nil {
			t.Errorf("%s: parseArgs(%q) succeeded", name, extra)
		}
	}
	if _, _, err := parseArgs([]string{"-name", "localhost/x:y"}, io.Discard); err == nil {
		t.Error("missing -o accepted")
	}
}

func TestLayerConflicts(t *testing.T) {
	for name, entries := range map[string][]entry{
		"duplicate": {
			{name: "bin/sh", typ: tar.TypeSymlink, linkname: "busybox"},
			{name: "bin/sh", typ: tar.TypeSymlink, linkname: "bash"},
		},
		"file as parent": {
			{name: "etc", typ: tar.TypeSymlink, linkname: "/x"},
			{name: "etc/passwd", typ: tar.TypeSymlink, linkname: "/y"},
		},
	} {
		if _, err := buildLayer(entries); err == nil {
			t.Errorf("%s: buildLayer succeeded", name)
		}
	}
}
