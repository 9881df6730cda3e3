package criconfig

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func envString(l *envList) string {
	var b []string
	for _, n := range l.names {
		b = append(b, n+"="+l.values[n])
	}
	return strings.Join(b, " ")
}

func TestContainerEnv(t *testing.T) {
	sources := func() *fakeSources {
		return &fakeSources{
			configMaps: map[string]map[string]string{
				"cfg":   {"B": "cm-b", "A": "cm-a", "1-not.a_C-ident": "odd"},
				"other": {"K": "other-k"},
			},
			secrets: map[string]map[string][]byte{"sec": {"PASSWORD": []byte("s3cr3t"), "A": []byte("sec-a")}},
		}
	}
	cmRef := func(name string, optional bool) *v1.ConfigMapEnvSource {
		return &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: name}, Optional: &optional}
	}
	cmKey := func(name, key string, optional bool) *v1.EnvVarSource {
		return &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
	}
	secretKey := func(name, key string, optional bool) *v1.EnvVarSource {
		return &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
	}
	for _, tc := range []struct {
		name       string
		c          v1.Container
		serviceEnv map[string]string
		nilSources bool
		want       string
		wantErr    string
	}{
		{
			name: "order of declaration and expansion of earlier vars",
			c: v1.Container{Env: []v1.EnvVar{
				{Name: "Z", Value: "z"},
				{Name: "A", Value: "$(Z)-a"},
				{Name: "B", Value: "$(C)-b"}, // C is defined later: left as is
				{Name: "C", Value: "c"},
				{Name: "ESC", Value: "$$(Z)"},
				{Name: "EMPTY"},
			}},
			want: "Z=z A=z-a B=$(C)-b C=c ESC=$(Z) EMPTY=",
		},
		{
			name: "redefinition keeps the first position and the last value",
			c:    v1.Container{Env: []v1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}, {Name: "A", Value: "$(A)3"}}},
			want: "A=13 B=2",
		},
		{
			name: "envFrom first, sorted per source, prefixed, env overrides",
			c: v1.Container{
				EnvFrom: []v1.EnvFromSource{
					{ConfigMapRef: cmRef("cfg", false)},
					{Prefix: "S_", SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}}},
				},
				Env: []v1.EnvVar{{Name: "B", Value: "env-b:$(A):$(S_PASSWORD)"}},
			},
			// Keys that are not C identifiers pass through, as with the
			// kubelet since RelaxedEnvironmentVariableValidation.
			want: "1-not.a_C-ident=odd A=cm-a B=env-b:cm-a:s3cr3t S_A=sec-a S_PASSWORD=s3cr3t",
		},
		{
			name: "later envFrom source wins",
			c: v1.Container{EnvFrom: []v1.EnvFromSource{
				{ConfigMapRef: cmRef("cfg", false)},
				{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}}},
			}},
			want: "1-not.a_C-ident=odd A=sec-a B=cm-b PASSWORD=s3cr3t",
		},
		{
			name: "missing optional envFrom is skipped",
			c:    v1.Container{EnvFrom: []v1.EnvFromSource{{ConfigMapRef: cmRef("nope", true)}, {ConfigMapRef: cmRef("other", false)}}},
			want: "K=other-k",
		},
		{
			name:    "missing envFrom",
			c:       v1.Container{EnvFrom: []v1.EnvFromSource{{ConfigMapRef: cmRef("nope", false)}}},
			wantErr: `configmap "nope" not found`,
		},
		{
			name:    "missing secret envFrom",
			c:       v1.Container{EnvFrom: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}}}}},
			wantErr: `secret "nope" not found`,
		},
		{
			name: "key refs",
			c: v1.Container{Env: []v1.EnvVar{
				{Name: "FROM_CM", ValueFrom: cmKey("cfg", "A", false)},
				{Name: "FROM_SECRET", ValueFrom: secretKey("sec", "PASSWORD", false)},
				{Name: "OPT_KEY", ValueFrom: cmKey("cfg", "missing", true)},
				{Name: "OPT_CM", ValueFrom: cmKey("nope", "A", true)},
				{Name: "OPT_SECRET", ValueFrom: secretKey("nope", "A", true)},
				{Name: "NOT_EXPANDED", ValueFrom: cmKey("other", "K", false)},
			}},
			want: "FROM_CM=cm-a FROM_SECRET=s3cr3t NOT_EXPANDED=other-k",
		},
		{
			name:    "missing configmap key",
			c:       v1.Container{Env: []v1.EnvVar{{Name: "X", ValueFrom: cmKey("cfg", "k", false)}}},
			wantErr: "couldn't find key k in ConfigMap ns/cfg",
		},
		{
			name:    "missing secret key",
			c:       v1.Container{Env: []v1.EnvVar{{Name: "X", ValueFrom: secretKey("sec", "k", false)}}},
			wantErr: "couldn't find key k in Secret ns/sec",
		},
		{
			name:    "missing configmap of a key ref",
			c:       v1.Container{Env: []v1.EnvVar{{Name: "X", ValueFrom: cmKey("nope", "k", false)}}},
			wantErr: `configmap "nope" not found`,
		},
		{
			name:       "no sources",
			c:          v1.Container{Env: []v1.EnvVar{{Name: "X", ValueFrom: cmKey("cfg", "A", false)}}},
			nilSources: true,
			wantErr:    "couldn't get configMap ns/cfg, no kubeClient defined",
		},
		{
			name: "service variables come last and can be referenced",
			c: v1.Container{Env: []v1.EnvVar{
				{Name: "URL", Value: "https://$(KUBERNETES_SERVICE_HOST):443"},
				{Name: "KUBERNETES_PORT", Value: "mine"},
			}},
			serviceEnv: map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_PORT": "tcp://10.96.0.1:443"},
			want:       "URL=https://10.96.0.1:443 KUBERNETES_PORT=mine KUBERNETES_SERVICE_HOST=10.96.0.1",
		},
		{
			name:    "fileKeyRef",
			c:       v1.Container{Env: []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{FileKeyRef: &v1.FileKeySelector{VolumeName: "v", Path: "p", Key: "k"}}}}},
			wantErr: `environment variable "X": fileKeyRef is not supported by this node agent`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := &ContainerOptions{ServiceEnv: tc.serviceEnv}
			if !tc.nilSources {
				opts.Sources = sources()
			}
			got, err := containerEnv(context.Background(), testPod(), &tc.c, opts)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := envString(got); s != tc.want {
				t.Errorf("env:\n got %s\nwant %s", s, tc.want)
			}
		})
	}
}

func TestContainerEnvFetchesEachSourceOnce(t *testing.T) {
	src := &fakeSources{configMaps: map[string]map[string]string{"cfg": {"A": "a"}}}
	c := &v1.Container{
		EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
		Env: []v1.EnvVar{
			{Name: "X", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "A"}}},
			{Name: "Y", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "A"}}},
		},
	}
	if _, err := containerEnv(context.Background(), testPod(), c, &ContainerOptions{Sources: src}); err != nil {
		t.Fatal(err)
	}
	if src.fetches != 1 {
		t.Errorf("fetched %d times, want 1", src.fetches)
	}
}

// A caller that resolved the environment first (to expand subPathExpr)
// hands it to BuildContainerConfig, which must not fetch its sources again.
func TestResolveEnvIsReusedByBuildContainerConfig(t *testing.T) {
	src := &fakeSources{configMaps: map[string]map[string]string{"cfg": {"A": "a"}}}
	pod := testPod()
	c := &v1.Container{Name: "app", Image: "busybox", Env: []v1.EnvVar{
		{Name: "X", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "A"}}},
		{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}}
	opts := ContainerOptions{Type: ContainerTypeRegular, Sources: src}
	env, err := ResolveEnv(context.Background(), pod, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	m := env.Map()
	if m["X"] != "a" || m["POD_NAME"] != pod.Name {
		t.Errorf("env = %v", m)
	}
	m["X"] = "changed"
	opts.Env = env
	cfg, err := BuildContainerConfig(context.Background(), pod, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	if src.fetches != 1 {
		t.Errorf("fetched %d times, want 1", src.fetches)
	}
	if len(cfg.Envs) != 2 || string(cfg.Envs[0].Value) != "a" {
		t.Errorf("config env = %v, want X=a unchanged by the caller's map", cfg.Envs)
	}

	c.Env[0].ValueFrom.ConfigMapKeyRef.Name = "missing"
	if _, err := ResolveEnv(context.Background(), pod, c, opts); !errors.Is(err, ErrCreateContainerConfig) {
		t.Errorf("ResolveEnv of a missing ConfigMap = %v, want a config error", err)
	}
}

func TestContainerEnvPassesOtherErrorsThrough(t *testing.T) {
	boom := errors.New("connection refused")
	optional := true
	c := &v1.Container{EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Optional: &optional}}}}
	// Optional covers absence only, not a failure to look.
	_, err := containerEnv(context.Background(), testPod(), c, &ContainerOptions{Sources: &fakeSources{err: boom}})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want %v", err, boom)
	}
}

func TestFieldRefValue(t *testing.T) {
	pod := testPod(func(p *v1.Pod) {
		p.Labels = map[string]string{"app": "web", "tier": "a \"b\""}
		p.Annotations = map[string]string{"example.com/Key": "v"}
		p.Spec.ServiceAccountName = "sa"
	})
	opts := &ContainerOptions{PodIPs: []string{"10.1.0.5", "fd00::5"}, HostIPs: []string{"192.168.1.2", "fd00::2"}, NodeName: "ignored"}
	for _, tc := range []struct {
		path, version, want, wantErr string
	}{
		{path: "metadata.name", want: "app"},
		{path: "metadata.namespace", want: "ns"},
		{path: "metadata.uid", want: "uid-1"},
		{path: "metadata.labels['app']", want: "web"},
		{path: "metadata.labels['missing']", want: ""},
		{path: "metadata.labels", want: "app=\"web\"\ntier=\"a \\\"b\\\"\""},
		{path: "metadata.annotations['example.com/Key']", want: "v"},
		{path: "metadata.annotations", want: `example.com/Key="v"`},
		{path: "spec.nodeName", want: "node-1"},
		{path: "spec.host", want: "node-1"},
		{path: "spec.serviceAccountName", want: "sa"},
		{path: "status.podIP", want: "10.1.0.5"},
		{path: "status.podIPs", want: "10.1.0.5,fd00::5"},
		{path: "status.hostIP", want: "192.168.1.2"},
		{path: "status.hostIPs", want: "192.168.1.2,fd00::2"},
		{path: "metadata.name", version: "v1", want: "app"},
		{path: "metadata.name", version: "v2", wantErr: "unsupported pod version: v2"},
		{path: "metadata.labels['bad key!']", wantErr: "invalid key subscript in metadata.labels['bad key!']: "},
		{path: "metadata.name['x']", wantErr: "field label does not support subscript: metadata.name['x']"},
		{path: "status.phase", wantErr: "unsupported fieldPath: status.phase"},
		{path: "spec.containers", wantErr: "field label not supported: spec.containers"},
	} {
		t.Run(tc.path+tc.version, func(t *testing.T) {
			got, err := fieldRefValue(&v1.ObjectFieldSelector{APIVersion: tc.version, FieldPath: tc.path}, pod, opts)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("= %q, %v; want %q", got, err, tc.want)
			}
		})
	}

	// Single IPs only, and a pod not yet bound to the node.
	single := &ContainerOptions{PodIP: "10.1.0.9", HostIP: "192.168.1.9", NodeName: "node-9"}
	unbound := testPod(func(p *v1.Pod) { p.Spec.NodeName = "" })
	for path, want := range map[string]string{"status.podIP": "10.1.0.9", "status.podIPs": "10.1.0.9", "status.hostIP": "192.168.1.9", "status.hostIPs": "192.168.1.9", "spec.nodeName": "node-9"} {
		if got, _ := fieldRefValue(&v1.ObjectFieldSelector{FieldPath: path}, unbound, single); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
}

// PodFieldValue, unlike the env path, does not check field labels first:
// its messages are the kubelet's downwardAPI volume messages.
func TestPodFieldValue(t *testing.T) {
	pod := testPod(func(p *v1.Pod) { p.Labels = map[string]string{"app": "web"} })
	for path, want := range map[string]string{
		"metadata.name":          "app",
		"metadata.labels['app']": "web",
		"metadata.labels":        `app="web"`,
	} {
		if got, err := PodFieldValue(pod, path); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
	for path, wantErr := range map[string]string{
		"spec.nodeName":           "unsupported fieldPath: spec.nodeName",
		"metadata.name['x']":      `fieldPath "metadata.name['x']" does not support subscript`,
		"metadata.labels['bad!']": "invalid key subscript in metadata.labels['bad!']: ",
	} {
		if _, err := PodFieldValue(pod, path); err == nil || !strings.HasPrefix(err.Error(), wantErr) {
			t.Errorf("%s: err = %v, want prefix %q", path, err, wantErr)
		}
	}
}

func TestResourceFieldRefValue(t *testing.T) {
	c := &v1.Container{Name: "main", Resources: v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceCPU: q("250m"), v1.ResourceMemory: q("64Mi")},
		Limits:   v1.ResourceList{v1.ResourceCPU: q("1500m"), v1.ResourceMemory: q("128Mi"), "hugepages-2Mi": q("4Mi")},
	}}
	pod := testPod(func(p *v1.Pod) {
		p.Spec.Containers = []v1.Container{*c, {Name: "other", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: q("1Gi")}}}}
		p.Spec.InitContainers = []v1.Container{{Name: "init"}}
	})
	allocatable := v1.ResourceList{v1.ResourceCPU: q("4"), v1.ResourceMemory: q("8Gi"), v1.ResourceEphemeralStorage: q("100Gi")}
	for _, tc := range []struct {
		resource, divisor, container string
		allocatable                  v1.ResourceList
		podLimits                    v1.ResourceList
		want, wantErr                string
	}{
		{resource: "limits.cpu", want: "2"}, // 1.5 rounded up
		{resource: "limits.cpu", divisor: "1m", want: "1500"},
		{resource: "requests.cpu", divisor: "100m", want: "3"},
		{resource: "requests.memory", divisor: "1Mi", want: "64"},
		{resource: "limits.memory", want: "134217728"},
		{resource: "limits.hugepages-2Mi", divisor: "1Mi", want: "4"},
		{resource: "requests.ephemeral-storage", want: "0"},
		{resource: "limits.ephemeral-storage", want: "0"},
		{resource: "limits.ephemeral-storage", divisor: "1Gi", allocatable: allocatable, want: "100"},
		{resource: "requests.memory", container: "other", divisor: "1Mi", want: "1024"},
		{resource: "limits.cpu", container: "other", allocatable: allocatable, want: "4"},
		{resource: "limits.cpu", container: "other", allocatable: allocatable, podLimits: v1.ResourceList{v1.ResourceCPU: q("2")}, want: "2"},
		{resource: "limits.memory", container: "other", podLimits: v1.ResourceList{v1.ResourceMemory: q("1Gi")}, divisor: "1Mi", want: "1024"},
		{resource: "limits.cpu", container: "init", allocatable: allocatable, want: "0"},
		{resource: "limits.cpu", container: "nope", wantErr: "container nope not found"},
		{resource: "limits.gpu", wantErr: "unsupported container resource : limits.gpu"},
		{resource: "cpu", wantErr: "unsupported container resource : cpu"},
	} {
		t.Run(fmt.Sprintf("%s/%s/%s", tc.resource, tc.container, tc.divisor), func(t *testing.T) {
			fs := &v1.ResourceFieldSelector{ContainerName: tc.container, Resource: tc.resource}
			if tc.divisor != "" {
				fs.Divisor = q(tc.divisor)
			}
			p := pod.DeepCopy()
			if tc.podLimits != nil {
				p.Spec.Resources = &v1.ResourceRequirements{Limits: tc.podLimits}
			}
			got, err := resourceFieldRefValue(fs, p, c, tc.allocatable)
			if errString(err) != tc.wantErr || got != tc.want {
				t.Errorf("= %q, %v; want %q, %q", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
