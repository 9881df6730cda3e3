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

// Env is a container's resolved environment: the variables it runs with.
type Env struct{ list *envList }

// ResolveEnv returns the environment container c of pod runs with, built
// from its envFrom, env (valueFrom included) and opts.ServiceEnv, as the
// kubelet builds it before anything else of the container's config. Its
// errors match ErrCreateContainerConfig and carry the kubelet's messages.
func ResolveEnv(ctx context.Context, pod *v1.Pod, c *v1.Container, opts ContainerOptions) (*Env, error) {
	list, err := containerEnv(ctx, pod, c, &opts)
	if err != nil {
		return nil, configError{err}
	}
	return &Env{list: list}, nil
}

// Map returns the variables by name, in a map of the caller's own. The
// kubelet expands a volumeMount's subPathExpr with it.
func (e *Env) Map() map[string]string { return maps.Clone(e.list.values) }

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
	pod     *v1.Pod
	c       *v1.Container
	opts    *ContainerOptions
	fetched map[objectKey]map[string]string
}

// envObject is a kind of object env takes values from, a ConfigMap or a
// Secret, whose data it reads as strings.
type envObject struct {
	// kind and title name it in the kubelet's messages: "couldn't get
	// configMap ..." and "couldn't find key ... in ConfigMap ...".
	kind, title string
	// data fetches one object through s and returns its data.
	data func(ctx context.Context, s EnvSources, namespace, name string) (map[string]string, error)
}

// objectKey names a fetched object within the pod's namespace.
type objectKey struct{ kind, name string }

var (
	configMapObject = envObject{kind: "configMap", title: "ConfigMap", data: func(ctx context.Context, s EnvSources, namespace, name string) (map[string]string, error) {
		cm, err := s.ConfigMap(ctx, namespace, name)
		if err != nil {
			return nil, err
		}
		// binaryData does not reach env, as with the kubelet.
		return cm.Data, nil
	}}
	secretObject = envObject{kind: "secret", title: "Secret", data: func(ctx context.Context, s EnvSources, namespace, name string) (map[string]string, error) {
		secret, err := s.Secret(ctx, namespace, name)
		if err != nil {
			return nil, err
		}
		data := make(map[string]string, len(secret.Data))
		for k, v := range secret.Data {
			data[k] = string(v)
		}
		return data, nil
	}}
)

// containerEnv returns c's environment: envFrom sources first (keys of one
// source in sorted order, prefix applied), then env, which overrides them,
// then the service variables nothing else defined. Values of env entries
// expand $(NAME) references to variables defined before them and to
// service variables; values from valueFrom are not expanded.
func containerEnv(ctx context.Context, pod *v1.Pod, c *v1.Container, opts *ContainerOptions) (*envList, error) {
	r := &envResolver{pod: pod, c: c, opts: opts, fetched: map[objectKey]map[string]string{}}
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
	var data map[string]string
	var err error
	switch {
	case from.ConfigMapRef != nil:
		data, _, err = r.object(ctx, configMapObject, from.ConfigMapRef.Name, isOptional(from.ConfigMapRef.Optional))
	case from.SecretRef != nil:
		data, _, err = r.object(ctx, secretObject, from.SecretRef.Name, isOptional(from.SecretRef.Optional))
	}
	return data, err
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
		return r.keyValue(ctx, configMapObject, ref.Name, ref.Key, isOptional(ref.Optional))
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		return r.keyValue(ctx, secretObject, ref.Name, ref.Key, isOptional(ref.Optional))
	case from.FileKeyRef != nil:
		// The kubelet reads the key from a file in one of the pod's
		// volumes; volumes are resolved outside this package.
		return "", false, fmt.Errorf("environment variable %q: fileKeyRef is not supported by this node agent", e.Name)
	}
	return "", true, nil
}

// keyValue returns the value of key in the named object of kind obj; ok is
// false for an optional reference to a missing object or key.
func (r *envResolver) keyValue(ctx context.Context, obj envObject, name, key string, optional bool) (value string, ok bool, err error) {
	data, found, err := r.object(ctx, obj, name, optional)
	if !found || err != nil {
		return "", false, err
	}
	value, ok = data[key]
	if !ok && !optional {
		return "", false, fmt.Errorf("couldn't find key %v in %s %v/%v", key, obj.title, r.pod.Namespace, name)
	}
	return value, ok, nil
}

// object returns the data of the named object of kind obj, fetched once per
// container; found is false, with no error, when it is missing and
// optional.
func (r *envResolver) object(ctx context.Context, obj envObject, name string, optional bool) (data map[string]string, found bool, err error) {
	key := objectKey{obj.kind, name}
	if data, ok := r.fetched[key]; ok {
		return data, true, nil
	}
	if r.opts.Sources == nil {
		return nil, false, fmt.Errorf("couldn't get %s %v/%v, no kubeClient defined", obj.kind, r.pod.Namespace, name)
	}
	data, err = obj.data(ctx, r.opts.Sources, r.pod.Namespace, name)
	if err != nil {
		if optional && apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	r.fetched[key] = data
	return data, true, nil
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
