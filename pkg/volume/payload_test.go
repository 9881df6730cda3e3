package volume

import (
	"maps"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func files(p map[string]fileProjection) map[string]string {
	out := map[string]string{}
	for k, v := range p {
		out[k] = string(v.Data)
	}
	return out
}

func modes(p map[string]fileProjection) map[string]int32 {
	out := map[string]int32{}
	for k, v := range p {
		out[k] = v.Mode
	}
	return out
}

func TestConfigMapPayload(t *testing.T) {
	cm := &v1.ConfigMap{
		Data:       map[string]string{"a": "1", "b": "2"},
		BinaryData: map[string][]byte{"bin": {0, 1}},
	}
	for _, tc := range []struct {
		name        string
		items       []v1.KeyToPath
		defaultMode *int32
		optional    bool
		wantFiles   map[string]string
		wantModes   map[string]int32
		wantErr     string
	}{
		{name: "all keys", defaultMode: ptr[int32](0o644),
			wantFiles: map[string]string{"a": "1", "b": "2", "bin": "\x00\x01"},
			wantModes: map[string]int32{"a": 0o644, "b": 0o644, "bin": 0o644}},
		{name: "items with paths and modes", defaultMode: ptr[int32](0o600),
			items:     []v1.KeyToPath{{Key: "a", Path: "dir/a.txt", Mode: ptr[int32](0o400)}, {Key: "bin", Path: "bin"}},
			wantFiles: map[string]string{"dir/a.txt": "1", "bin": "\x00\x01"},
			wantModes: map[string]int32{"dir/a.txt": 0o400, "bin": 0o600}},
		{name: "missing key", defaultMode: ptr[int32](0o644),
			items:   []v1.KeyToPath{{Key: "nope", Path: "x"}},
			wantErr: "configmap references non-existent config key: nope"},
		{name: "missing key optional", defaultMode: ptr[int32](0o644), optional: true,
			items:     []v1.KeyToPath{{Key: "nope", Path: "x"}, {Key: "a", Path: "a"}},
			wantFiles: map[string]string{"a": "1"}, wantModes: map[string]int32{"a": 0o644}},
		{name: "no default mode", wantErr: "no defaultMode used"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := configMapPayload(tc.items, cm, tc.defaultMode, tc.optional)
			if !errContains(err, tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if !maps.Equal(files(got), tc.wantFiles) || !maps.Equal(modes(got), tc.wantModes) {
				t.Errorf("payload = %v %v, want %v %v", files(got), modes(got), tc.wantFiles, tc.wantModes)
			}
		})
	}
}

func TestSecretPayload(t *testing.T) {
	s := &v1.Secret{Data: map[string][]byte{"user": []byte("admin"), "pass": []byte("pw")}}
	got, err := secretPayload([]v1.KeyToPath{{Key: "pass", Path: "p", Mode: ptr[int32](0o400)}}, s, ptr[int32](0o644), false)
	if err != nil || !maps.Equal(files(got), map[string]string{"p": "pw"}) || got["p"].Mode != 0o400 {
		t.Errorf("items payload = %v %v, %v", files(got), modes(got), err)
	}
	got, err = secretPayload(nil, s, ptr[int32](0o440), false)
	if err != nil || !maps.Equal(files(got), map[string]string{"user": "admin", "pass": "pw"}) || got["user"].Mode != 0o440 {
		t.Errorf("all keys payload = %v %v, %v", files(got), modes(got), err)
	}
	if _, err := secretPayload([]v1.KeyToPath{{Key: "x", Path: "x"}}, s, ptr[int32](0o644), false); !errContains(err, "references non-existent secret key: x") {
		t.Errorf("missing key: %v", err)
	}
}

func TestDownwardAPIPayload(t *testing.T) {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod", UID: "u-1",
			Labels:      map[string]string{"b": "2", "a": `q"uote`},
			Annotations: map[string]string{"note": "hi"}},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "main", Resources: v1.ResourceRequirements{
			Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m")},
		}}}},
	}
	alloc := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi")}
	field := func(path, fp string) v1.DownwardAPIVolumeFile {
		return v1.DownwardAPIVolumeFile{Path: path, FieldRef: &v1.ObjectFieldSelector{FieldPath: fp}}
	}
	res := func(path, r, divisor string) v1.DownwardAPIVolumeFile {
		sel := &v1.ResourceFieldSelector{ContainerName: "main", Resource: r}
		if divisor != "" {
			sel.Divisor = resource.MustParse(divisor)
		}
		return v1.DownwardAPIVolumeFile{Path: path, ResourceFieldRef: sel}
	}
	for _, tc := range []struct {
		name    string
		item    v1.DownwardAPIVolumeFile
		want    string
		wantErr string
	}{
		{"name", field("name", "metadata.name"), "web", ""},
		{"namespace", field("ns", "metadata.namespace"), "prod", ""},
		{"uid", field("uid", "metadata.uid"), "u-1", ""},
		{"labels sorted and quoted", field("labels", "metadata.labels"), "a=\"q\\\"uote\"\nb=\"2\"", ""},
		{"one annotation", field("note", "metadata.annotations['note']"), "hi", ""},
		{"unsupported field", field("node", "spec.nodeName"), "", "unsupported fieldPath: spec.nodeName"},
		{"memory limit in Mi", res("mem", "limits.memory", "1Mi"), "64", ""},
		{"cpu limit from node allocatable", res("cpu", "limits.cpu", ""), "4", ""},
		{"cpu request in millicores", res("req", "requests.cpu", "1m"), "250", ""},
		{"cpu request rounds up", res("req", "requests.cpu", ""), "1", ""},
		{"unknown container", v1.DownwardAPIVolumeFile{Path: "x", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "nope", Resource: "limits.cpu"}}, "", "container nope not found"},
		{"unsupported resource", res("x", "limits.gpu", ""), "", "unsupported container resource : limits.gpu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := downwardAPIPayload([]v1.DownwardAPIVolumeFile{tc.item}, pod, alloc, ptr[int32](0o644))
			if !errContains(err, tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if err == nil && string(got[tc.item.Path].Data) != tc.want {
				t.Errorf("%s = %q, want %q", tc.item.Path, got[tc.item.Path].Data, tc.want)
			}
		})
	}

	// Several failures are reported together, the good items kept.
	got, err := downwardAPIPayload([]v1.DownwardAPIVolumeFile{field("a", "bad.one"), field("n", "metadata.name"), field("b", "bad.two")}, pod, alloc, ptr[int32](0o600))
	if want := "[unsupported fieldPath: bad.one, unsupported fieldPath: bad.two]"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	if string(got["n"].Data) != "web" || got["n"].Mode != 0o600 {
		t.Errorf("good item = %q %o", got["n"].Data, got["n"].Mode)
	}
}
