package criconfig

import (
	"context"
	"fmt"
	"maps"
	"slices"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// EnvSources fetches the ConfigMaps and Secrets a container's env refers
// to. A missing object must be reported with an error for which
// apierrors.IsNotFound is true (as client-go's are), so optional references
// can be skipped; its message reaches the user as is.
type EnvSources interface {
	ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*v1.Secret, error)
}

// envList is a container's environment: each name once, in the order it
// was first defined, with the value it was given last. The kubelet builds
// it in a map and so sends it in random order; a fixed order gives the
// same config for the same inputs.
type envList struct {
	names  []string
	values map[string]string
}

func newEnvList() *envList { return &envList{values: map[string]string{}} }

func (l *envList) set(name, value string) {
	if _, ok := l.values[name]; !ok {
		l.names = append(l.names, name)
	}
	l.values[name] = value
}

func (l *envList) keyValues() []*runtimeapi.KeyValue {
	kv := make([]*runtimeapi.KeyValue, 0, len(l.names))
	for _, n := range l.names {
		kv = append(kv, &runtimeapi.KeyValue{Key: n, Value: []byte(l.values[n])})
	}
	return kv
}

// envResolver resolves one container's env, fetching each ConfigMap and
// Secret at most once.
type envResolver struct {
	pod        *v1.Pod
	c          *v1.Container
	opts       *ContainerOptions
	configMaps map[string]*v1.ConfigMap
	secrets    map[string]*v1.Secret
}

// containerEnv returns c's environment: envFrom sources first (keys of one
// source in sorted order, prefix applied), then env, which overrides them,
// then the service variables nothing else defined. Values of env entries
// expand $(NAME) references to variables defined before them and to
// service variables; values from valueFrom are not expanded.
func containerEnv(ctx context.Context, pod *v1.Pod, c *v1.Container, opts *ContainerOptions) (*envList, error) {
	r := &envResolver{pod: pod, c: c, opts: opts, configMaps: map[string]*v1.ConfigMap{}, secrets: map[string]*v1.Secret{}}
	env := newEnvList()
	for _, from := range c.EnvFrom {
		data, err := r.envFrom(ctx, from)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(data) {
			// Keys are not validated: the API accepts any printable name
			// for env (RelaxedEnvironmentVariableValidation, GA), and the
			// kubelet passes envFrom keys through as they are.
			env.set(from.Prefix+k, data[k])
		}
	}
	lookup := lookupIn(env.values, opts.ServiceEnv)
	for i := range c.Env {
		e := &c.Env[i]
		value := e.Value
		if value != "" {
			value = ExpandVars(value, lookup)
		} else if e.ValueFrom != nil {
			v, ok, err := r.valueFrom(ctx, e)
			if err != nil {
				return nil, err
			}
			if !ok {
				// An optional reference to something missing leaves the
				// variable undefined, not empty.
				continue
			}
			value = v
		}
		env.set(e.Name, value)
	}
	for _, k := range sortedKeys(opts.ServiceEnv) {
		if _, ok := env.values[k]; !ok {
			env.set(k, opts.ServiceEnv[k])
		}
	}
	return env, nil
}

// envFrom returns the data of one envFrom source; nil for a missing
// optional one.
func (r *envResolver) envFrom(ctx context.Context, from v1.EnvFromSource) (map[string]string, error) {
	switch {
	case from.ConfigMapRef != nil:
		cm, err := r.configMap(ctx, from.ConfigMapRef.Name, isOptional(from.ConfigMapRef.Optional))
		if cm == nil || err != nil {
			return nil, err
		}
		return cm.Data, nil
	case from.SecretRef != nil:
		s, err := r.secret(ctx, from.SecretRef.Name, isOptional(from.SecretRef.Optional))
		if s == nil || err != nil {
			return nil, err
		}
		data := make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			data[k] = string(v)
		}
		return data, nil
	}
	return nil, nil
}

// valueFrom resolves e.ValueFrom; ok is false for an optional reference to
// a missing object or key.
func (r *envResolver) valueFrom(ctx context.Context, e *v1.EnvVar) (value string, ok bool, err error) {
	from := e.ValueFrom
	switch {
	case from.FieldRef != nil:
		v, err := fieldRefValue(from.FieldRef, r.pod, r.opts)
		return v, err == nil, err
	case from.ResourceFieldRef != nil:
		v, err := resourceFieldRefValue(from.ResourceFieldRef, r.pod, r.c, r.opts.Node.Allocatable)
		return v, err == nil, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		optional := isOptional(ref.Optional)
		cm, err := r.configMap(ctx, ref.Name, optional)
		if cm == nil || err != nil {
			return "", false, err
		}
		v, found := cm.Data[ref.Key]
		if !found && !optional {
			return "", false, fmt.Errorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, r.pod.Namespace, ref.Name)
		}
		return v, found, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		optional := isOptional(ref.Optional)
		s, err := r.secret(ctx, ref.Name, optional)
		if s == nil || err != nil {
			return "", false, err
		}
		v, found := s.Data[ref.Key]
		if !found && !optional {
			return "", false, fmt.Errorf("couldn't find key %v in Secret %v/%v", ref.Key, r.pod.Namespace, ref.Name)
		}
		return string(v), found, nil
	case from.FileKeyRef != nil:
		// The kubelet reads the key from a file in one of the pod's
		// volumes; volumes are resolved outside this package.
		return "", false, fmt.Errorf("environment variable %q: fileKeyRef is not supported by this node agent", e.Name)
	}
	return "", true, nil
}

// configMap fetches a ConfigMap once per container; nil with no error
// means it is missing and optional.
func (r *envResolver) configMap(ctx context.Context, name string, optional bool) (*v1.ConfigMap, error) {
	if cm, ok := r.configMaps[name]; ok {
		return cm, nil
	}
	if r.opts.Sources == nil {
		return nil, fmt.Errorf("couldn't get configMap %v/%v, no kubeClient defined", r.pod.Namespace, name)
	}
	cm, err := r.opts.Sources.ConfigMap(ctx, r.pod.Namespace, name)
	if err != nil {
		if optional && apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	r.configMaps[name] = cm
	return cm, nil
}

// secret is configMap for Secrets.
func (r *envResolver) secret(ctx context.Context, name string, optional bool) (*v1.Secret, error) {
	if s, ok := r.secrets[name]; ok {
		return s, nil
	}
	if r.opts.Sources == nil {
		return nil, fmt.Errorf("couldn't get secret %v/%v, no kubeClient defined", r.pod.Namespace, name)
	}
	s, err := r.opts.Sources.Secret(ctx, r.pod.Namespace, name)
	if err != nil {
		if optional && apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	r.secrets[name] = s
	return s, nil
}

// expandCommand expands $(NAME) in a container's command and args with its
// final environment. Nil stays nil, so the image's entrypoint and cmd apply.
func expandCommand(c *v1.Container, env *envList) (command, args []string) {
	lookup := lookupIn(env.values)
	for _, s := range c.Command {
		command = append(command, ExpandVars(s, lookup))
	}
	for _, s := range c.Args {
		args = append(args, ExpandVars(s, lookup))
	}
	return command, args
}

func isOptional(b *bool) bool { return b != nil && *b }

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
