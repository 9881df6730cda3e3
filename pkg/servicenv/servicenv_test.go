package servicenv

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func service(ns, name, clusterIP string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.ServiceSpec{ClusterIP: clusterIP, Ports: ports},
	}
}

func port(name string, p int32, protocol v1.Protocol) v1.ServicePort {
	return v1.ServicePort{Name: name, Port: p, Protocol: protocol}
}

func pod(ns string, links *bool) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"},
		Spec:       v1.PodSpec{EnableServiceLinks: links},
	}
}

// master is the default namespace's kubernetes Service as the API server
// makes it.
var master = service("default", "kubernetes", "10.0.0.1", port("https", 443, v1.ProtocolTCP))

// masterEnv are the variables master gives.
var masterEnv = map[string]string{
	"KUBERNETES_SERVICE_HOST":       "10.0.0.1",
	"KUBERNETES_SERVICE_PORT":       "443",
	"KUBERNETES_SERVICE_PORT_HTTPS": "443",
	"KUBERNETES_PORT":               "tcp://10.0.0.1:443",
	"KUBERNETES_PORT_443_TCP":       "tcp://10.0.0.1:443",
	"KUBERNETES_PORT_443_TCP_PROTO": "tcp",
	"KUBERNETES_PORT_443_TCP_PORT":  "443",
	"KUBERNETES_PORT_443_TCP_ADDR":  "10.0.0.1",
}

var webEnv = map[string]string{
	"WEB_SERVICE_HOST":      "10.0.0.20",
	"WEB_SERVICE_PORT":      "80",
	"WEB_PORT":              "tcp://10.0.0.20:80",
	"WEB_PORT_80_TCP":       "tcp://10.0.0.20:80",
	"WEB_PORT_80_TCP_PROTO": "tcp",
	"WEB_PORT_80_TCP_PORT":  "80",
	"WEB_PORT_80_TCP_ADDR":  "10.0.0.20",
}

func union(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

func TestFromServicesOrder(t *testing.T) {
	services := []*v1.Service{
		service("ns", "my-db", "10.0.0.30",
			port("", 5432, ""), port("metrics-http", 9187, v1.ProtocolTCP), port("dns", 53, v1.ProtocolUDP), port("sig", 7777, v1.ProtocolSCTP)),
		service("ns", "headless", v1.ClusterIPNone, port("", 80, v1.ProtocolTCP)),
		service("ns", "v6", "fd00::10", port("", 8080, v1.ProtocolTCP)),
	}
	got := FromServices(services)
	want := []v1.EnvVar{
		{Name: "MY_DB_SERVICE_HOST", Value: "10.0.0.30"},
		{Name: "MY_DB_SERVICE_PORT", Value: "5432"},
		{Name: "MY_DB_SERVICE_PORT_METRICS_HTTP", Value: "9187"},
		{Name: "MY_DB_SERVICE_PORT_DNS", Value: "53"},
		{Name: "MY_DB_SERVICE_PORT_SIG", Value: "7777"},
		{Name: "MY_DB_PORT", Value: "tcp://10.0.0.30:5432"},
		{Name: "MY_DB_PORT_5432_TCP", Value: "tcp://10.0.0.30:5432"},
		{Name: "MY_DB_PORT_5432_TCP_PROTO", Value: "tcp"},
		{Name: "MY_DB_PORT_5432_TCP_PORT", Value: "5432"},
		{Name: "MY_DB_PORT_5432_TCP_ADDR", Value: "10.0.0.30"},
		{Name: "MY_DB_PORT_9187_TCP", Value: "tcp://10.0.0.30:9187"},
		{Name: "MY_DB_PORT_9187_TCP_PROTO", Value: "tcp"},
		{Name: "MY_DB_PORT_9187_TCP_PORT", Value: "9187"},
		{Name: "MY_DB_PORT_9187_TCP_ADDR", Value: "10.0.0.30"},
		{Name: "MY_DB_PORT_53_UDP", Value: "udp://10.0.0.30:53"},
		{Name: "MY_DB_PORT_53_UDP_PROTO", Value: "udp"},
		{Name: "MY_DB_PORT_53_UDP_PORT", Value: "53"},
		{Name: "MY_DB_PORT_53_UDP_ADDR", Value: "10.0.0.30"},
		{Name: "MY_DB_PORT_7777_SCTP", Value: "sctp://10.0.0.30:7777"},
		{Name: "MY_DB_PORT_7777_SCTP_PROTO", Value: "sctp"},
		{Name: "MY_DB_PORT_7777_SCTP_PORT", Value: "7777"},
		{Name: "MY_DB_PORT_7777_SCTP_ADDR", Value: "10.0.0.30"},
		{Name: "V6_SERVICE_HOST", Value: "fd00::10"},
		{Name: "V6_SERVICE_PORT", Value: "8080"},
		{Name: "V6_PORT", Value: "tcp://[fd00::10]:8080"},
		{Name: "V6_PORT_8080_TCP", Value: "tcp://[fd00::10]:8080"},
		{Name: "V6_PORT_8080_TCP_PROTO", Value: "tcp"},
		{Name: "V6_PORT_8080_TCP_PORT", Value: "8080"},
		{Name: "V6_PORT_8080_TCP_ADDR", Value: "fd00::10"},
	}
	if diff := envDiff(want, got); diff != "" {
		t.Errorf("FromServices (-want +got):\n%s", diff)
	}
}

func TestForPod(t *testing.T) {
	web := service("app", "web", "10.0.0.20", port("", 80, v1.ProtocolTCP))
	for _, tc := range []struct {
		name     string
		pod      *v1.Pod
		services []*v1.Service
		want     map[string]string
	}{
		{
			name: "no services",
			pod:  pod("app", nil),
			want: map[string]string{},
		},
		{
			name:     "master only",
			pod:      pod("app", nil),
			services: []*v1.Service{master},
			want:     masterEnv,
		},
		{
			name:     "links default to enabled",
			pod:      pod("app", nil),
			services: []*v1.Service{web, master},
			want:     union(masterEnv, webEnv),
		},
		{
			name:     "links disabled keep the master service",
			pod:      pod("app", ptr.To(false)),
			services: []*v1.Service{master, web},
			want:     masterEnv,
		},
		{
			name: "other namespaces ignored",
			pod:  pod("other", ptr.To(true)),
			services: []*v1.Service{master, web,
				service("default", "default-web", "10.0.0.21", port("", 80, v1.ProtocolTCP))},
			want: masterEnv,
		},
		{
			name: "pod in the default namespace gets its services",
			pod:  pod("default", nil),
			services: []*v1.Service{master,
				service("default", "default-web", "10.0.0.21", port("", 80, v1.ProtocolTCP))},
			want: union(masterEnv, map[string]string{
				"DEFAULT_WEB_SERVICE_HOST":      "10.0.0.21",
				"DEFAULT_WEB_SERVICE_PORT":      "80",
				"DEFAULT_WEB_PORT":              "tcp://10.0.0.21:80",
				"DEFAULT_WEB_PORT_80_TCP":       "tcp://10.0.0.21:80",
				"DEFAULT_WEB_PORT_80_TCP_PROTO": "tcp",
				"DEFAULT_WEB_PORT_80_TCP_PORT":  "80",
				"DEFAULT_WEB_PORT_80_TCP_ADDR":  "10.0.0.21",
			}),
		},
		{
			name: "headless and ExternalName skipped",
			pod:  pod("app", nil),
			services: []*v1.Service{master,
				service("app", "headless", v1.ClusterIPNone, port("", 80, v1.ProtocolTCP)),
				{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "ext"}, Spec: v1.ServiceSpec{Type: v1.ServiceTypeExternalName, ExternalName: "example.com"}},
			},
			want: masterEnv,
		},
		{
			name: "multiple ports and protocols",
			pod:  pod("app", nil),
			services: []*v1.Service{
				service("app", "dns", "10.0.0.10", port("dns", 53, v1.ProtocolUDP), port("dns-tcp", 53, v1.ProtocolTCP), port("sig", 9, v1.ProtocolSCTP)),
			},
			want: map[string]string{
				"DNS_SERVICE_HOST":         "10.0.0.10",
				"DNS_SERVICE_PORT":         "53",
				"DNS_SERVICE_PORT_DNS":     "53",
				"DNS_SERVICE_PORT_DNS_TCP": "53",
				"DNS_SERVICE_PORT_SIG":     "9",
				"DNS_PORT":                 "udp://10.0.0.10:53",
				"DNS_PORT_53_UDP":          "udp://10.0.0.10:53",
				"DNS_PORT_53_UDP_PROTO":    "udp",
				"DNS_PORT_53_UDP_PORT":     "53",
				"DNS_PORT_53_UDP_ADDR":     "10.0.0.10",
				"DNS_PORT_53_TCP":          "tcp://10.0.0.10:53",
				"DNS_PORT_53_TCP_PROTO":    "tcp",
				"DNS_PORT_53_TCP_PORT":     "53",
				"DNS_PORT_53_TCP_ADDR":     "10.0.0.10",
				"DNS_PORT_9_SCTP":          "sctp://10.0.0.10:9",
				"DNS_PORT_9_SCTP_PROTO":    "sctp",
				"DNS_PORT_9_SCTP_PORT":     "9",
				"DNS_PORT_9_SCTP_ADDR":     "10.0.0.10",
			},
		},
		{
			// As the kubelet: a kubernetes Service of the pod's own
			// namespace replaces the default namespace's, in any order.
			name: "own kubernetes service wins with links",
			pod:  pod("app", nil),
			services: []*v1.Service{
				service("app", "kubernetes", "10.0.0.99", port("", 8443, v1.ProtocolTCP)), master},
			want: map[string]string{
				"KUBERNETES_SERVICE_HOST":        "10.0.0.99",
				"KUBERNETES_SERVICE_PORT":        "8443",
				"KUBERNETES_PORT":                "tcp://10.0.0.99:8443",
				"KUBERNETES_PORT_8443_TCP":       "tcp://10.0.0.99:8443",
				"KUBERNETES_PORT_8443_TCP_PROTO": "tcp",
				"KUBERNETES_PORT_8443_TCP_PORT":  "8443",
				"KUBERNETES_PORT_8443_TCP_ADDR":  "10.0.0.99",
			},
		},
		{
			name: "own kubernetes service ignored without links",
			pod:  pod("app", ptr.To(false)),
			services: []*v1.Service{
				service("app", "kubernetes", "10.0.0.99", port("", 8443, v1.ProtocolTCP)), master},
			want: masterEnv,
		},
		{
			name: "headless own kubernetes service leaves the master's",
			pod:  pod("app", nil),
			services: []*v1.Service{
				service("app", "kubernetes", v1.ClusterIPNone, port("", 8443, v1.ProtocolTCP)), master},
			want: masterEnv,
		},
		{
			name:     "master duplicated (pod in default) counted once",
			pod:      pod("default", ptr.To(false)),
			services: []*v1.Service{master, master},
			want:     masterEnv,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ForPod(tc.pod, tc.services)
			if diff := envDiff(tc.want, got); diff != "" {
				t.Errorf("ForPod (-want +got):\n%s", diff)
			}
			// The order of the Services does not matter.
			rev := slices.Clone(tc.services)
			slices.Reverse(rev)
			if diff := envDiff(got, ForPod(tc.pod, rev)); diff != "" {
				t.Errorf("ForPod with Services reversed (-first +reversed):\n%s", diff)
			}
		})
	}
}

// TestForPodCollision: two Services whose variables share a name resolve
// the same way whatever their order: the name that sorts last wins.
func TestForPodCollision(t *testing.T) {
	// web's 80/TCP port and the Service web-port-80-tcp both define
	// WEB_PORT_80_TCP_PORT.
	a := service("app", "web", "10.0.0.20", port("", 80, v1.ProtocolTCP))
	b := service("app", "web-port-80-tcp", "10.0.0.21", port("", 81, v1.ProtocolTCP))
	for _, order := range [][]*v1.Service{{a, b}, {b, a}} {
		if got := ForPod(pod("app", nil), order)["WEB_PORT_80_TCP_PORT"]; got != "tcp://10.0.0.21:81" {
			t.Errorf("WEB_PORT_80_TCP_PORT = %q, want web-port-80-tcp's URL", got)
		}
	}
}

func lister(t *testing.T, services ...*v1.Service) corelisters.ServiceLister {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, s := range services {
		if err := idx.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	return corelisters.NewServiceLister(idx)
}

func TestEnv(t *testing.T) {
	web := service("app", "web", "10.0.0.20", port("", 80, v1.ProtocolTCP))
	other := service("other", "db", "10.0.0.30", port("", 5432, v1.ProtocolTCP))
	l := lister(t, master, web, other)

	got, err := NewEnv(l, nil).ServiceEnv(pod("app", nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := envDiff(union(masterEnv, webEnv), got); diff != "" {
		t.Errorf("ServiceEnv (-want +got):\n%s", diff)
	}
	got, err = NewEnv(l, func() bool { return true }).ServiceEnv(pod("app", ptr.To(false)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := envDiff(masterEnv, got); diff != "" {
		t.Errorf("ServiceEnv without links (-want +got):\n%s", diff)
	}

	// No kubernetes Service (yet): no KUBERNETES_ variables, no error.
	got, err = NewEnv(lister(t, web), nil).ServiceEnv(pod("app", nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := envDiff(webEnv, got); diff != "" {
		t.Errorf("ServiceEnv without master (-want +got):\n%s", diff)
	}

	// Not synced: refused, so no container starts without its variables.
	if _, err := NewEnv(l, func() bool { return false }).ServiceEnv(pod("app", nil)); err == nil {
		t.Error("ServiceEnv before sync: no error")
	}

	// A lister that fails.
	if _, err := NewEnv(failingLister{}, nil).ServiceEnv(pod("app", nil)); err == nil {
		t.Error("ServiceEnv with a failing lister: no error")
	}
}

type failingLister struct{ corelisters.ServiceLister }

func (failingLister) Services(string) corelisters.ServiceNamespaceLister { return failingNSLister{} }

type failingNSLister struct {
	corelisters.ServiceNamespaceLister
}

var errBroken = errors.New("broken")

func (failingNSLister) Get(string) (*v1.Service, error)             { return nil, errBroken }
func (failingNSLister) List(labels.Selector) ([]*v1.Service, error) { return nil, errBroken }

// envDiff describes how got differs from want ("" if equal): for maps the
// names that differ, otherwise both values.
func envDiff(want, got any) string {
	if reflect.DeepEqual(want, got) {
		return ""
	}
	wm, ok1 := want.(map[string]string)
	gm, ok2 := got.(map[string]string)
	if !ok1 || !ok2 {
		return fmt.Sprintf("-%v\n+%v", want, got)
	}
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(union(wm, gm))) {
		w, wok := wm[k]
		g, gok := gm[k]
		switch {
		case wok && !gok:
			lines = append(lines, fmt.Sprintf("-%s=%s", k, w))
		case !wok && gok:
			lines = append(lines, fmt.Sprintf("+%s=%s", k, g))
		case w != g:
			lines = append(lines, fmt.Sprintf("-%s=%s\n+%s=%s", k, w, k, g))
		}
	}
	return strings.Join(lines, "\n")
}
