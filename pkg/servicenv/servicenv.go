// Package servicenv computes the service environment variables the kubelet
// gives every container (KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT,
// WEB_PORT_80_TCP_ADDR...): the `kubernetes` Service of the default
// namespace for every pod, and with spec.enableServiceLinks every Service
// of the pod's own namespace that has a cluster IP.
//
// ForPod and FromServices are pure, as the kubelet's getServiceEnvVarMap
// and envvars.FromServices; Env reads the Services from an informer's
// lister. The variables are computed when a container is created and do not
// change in a running container.
package servicenv

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// MasterService is the Service of the default namespace whose variables
// every pod gets, whatever its enableServiceLinks says; in-cluster clients
// (client-go's InClusterConfig) find the API server through them.
const MasterService = "kubernetes"

// ForPod returns the service variables of a container of pod, given the
// Services of the cluster (any namespaces; those of other namespaces are
// ignored). As the kubelet:
//
//   - the default namespace's `kubernetes` Service always counts;
//   - with enableServiceLinks (true when unset), every Service of the pod's
//     namespace counts too, and one named `kubernetes` there replaces the
//     default namespace's;
//   - Services without a cluster IP (headless, ExternalName) give nothing.
//
// The kubelet resolves a name two Services both define in map order, that
// is at random; here the Service whose name sorts last wins.
func ForPod(pod *v1.Pod, services []*v1.Service) map[string]string {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	chosen := map[string]*v1.Service{}
	for _, s := range services {
		if !hasClusterIP(s) {
			continue
		}
		switch {
		case s.Namespace == metav1.NamespaceDefault && s.Name == MasterService:
			if _, ok := chosen[s.Name]; !ok {
				chosen[s.Name] = s
			}
		case s.Namespace == pod.Namespace && links:
			chosen[s.Name] = s
		}
	}
	names := make([]string, 0, len(chosen))
	for name := range chosen {
		names = append(names, name)
	}
	slices.Sort(names)
	ordered := make([]*v1.Service, 0, len(names))
	for _, name := range names {
		ordered = append(ordered, chosen[name])
	}
	env := map[string]string{}
	for _, e := range FromServices(ordered) {
		env[e.Name] = e.Value
	}
	return env
}

// FromServices returns the variables of services, in their order, as the
// kubelet's envvars.FromServices: for each Service with a cluster IP,
// NAME_SERVICE_HOST, NAME_SERVICE_PORT (the first port),
// NAME_SERVICE_PORT_PORTNAME for every named port, then the Docker-link
// variables: NAME_PORT (the first port's URL) and, for every port,
// NAME_PORT_80_TCP (its URL), _PROTO, _PORT and _ADDR. NAME is the
// Service's name upper-cased with '-' made '_'.
func FromServices(services []*v1.Service) []v1.EnvVar {
	var env []v1.EnvVar
	for _, s := range services {
		// Validation gives every Service with a cluster IP a port; one
		// without would have no NAME_SERVICE_PORT to give.
		if !hasClusterIP(s) || len(s.Spec.Ports) == 0 {
			continue
		}
		prefix := envName(s.Name)
		env = append(env,
			v1.EnvVar{Name: prefix + "_SERVICE_HOST", Value: s.Spec.ClusterIP},
			v1.EnvVar{Name: prefix + "_SERVICE_PORT", Value: strconv.Itoa(int(s.Spec.Ports[0].Port))})
		for _, p := range s.Spec.Ports {
			// Only the first port may be unnamed.
			if p.Name != "" {
				env = append(env, v1.EnvVar{Name: prefix + "_SERVICE_PORT_" + envName(p.Name), Value: strconv.Itoa(int(p.Port))})
			}
		}
		env = append(env, linkVars(prefix, s)...)
	}
	return env
}

// linkVars returns the Docker-link variables of s's ports.
func linkVars(prefix string, s *v1.Service) []v1.EnvVar {
	var env []v1.EnvVar
	for i, p := range s.Spec.Ports {
		protocol := v1.ProtocolTCP
		if p.Protocol != "" {
			protocol = p.Protocol
		}
		proto := strings.ToLower(string(protocol))
		port := strconv.Itoa(int(p.Port))
		url := proto + "://" + net.JoinHostPort(s.Spec.ClusterIP, port)
		if i == 0 {
			// Docker names the first port's URL NAME_PORT.
			env = append(env, v1.EnvVar{Name: prefix + "_PORT", Value: url})
		}
		portPrefix := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, strings.ToUpper(string(protocol)))
		env = append(env,
			v1.EnvVar{Name: portPrefix, Value: url},
			v1.EnvVar{Name: portPrefix + "_PROTO", Value: proto},
			v1.EnvVar{Name: portPrefix + "_PORT", Value: port},
			v1.EnvVar{Name: portPrefix + "_ADDR", Value: s.Spec.ClusterIP})
	}
	return env
}

// envName is a Service or port name as a variable name.
func envName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }

// hasClusterIP is the kubelet's IsServiceIPSet: not headless ("None") and
// not without one (ExternalName).
func hasClusterIP(s *v1.Service) bool {
	return s.Spec.ClusterIP != "" && s.Spec.ClusterIP != v1.ClusterIPNone
}

// Env gives pods their service variables from a Service informer's cache
// (all namespaces). Its ServiceEnv satisfies kuberuntime.Services.
type Env struct {
	lister corelisters.ServiceLister
	synced cache.InformerSynced
}

// NewEnv returns an Env reading lister; synced (the informer's HasSynced)
// tells whether the cache was filled once. A nil synced counts as synced.
func NewEnv(lister corelisters.ServiceLister, synced cache.InformerSynced) *Env {
	return &Env{lister: lister, synced: synced}
}

// ServiceEnv returns the service variables of a container of pod, see
// ForPod. Until the cache has synced it fails, with the kubelet's message,
// rather than start a container without KUBERNETES_SERVICE_HOST.
func (e *Env) ServiceEnv(pod *v1.Pod) (map[string]string, error) {
	if e.synced != nil && !e.synced() {
		return nil, errors.New("services have not yet been read at least once, cannot construct envvars")
	}
	var services []*v1.Service
	master, err := e.lister.Services(metav1.NamespaceDefault).Get(MasterService)
	switch {
	case err == nil:
		services = append(services, master)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("failed to list services when setting up env vars: %w", err)
	}
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		own, err := e.lister.Services(pod.Namespace).List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("failed to list services when setting up env vars: %w", err)
		}
		services = append(services, own...)
	}
	return ForPod(pod, services), nil
}
