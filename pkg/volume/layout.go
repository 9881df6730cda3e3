package volume

import (
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// Plugin names, as the kubelet's volume plugins name themselves. On disk the
// "/" becomes "~" (see escapePluginName).
const (
	pluginEmptyDir    = "kubernetes.io/empty-dir"
	pluginConfigMap   = "kubernetes.io/configmap"
	pluginSecret      = "kubernetes.io/secret"
	pluginDownwardAPI = "kubernetes.io/downward-api"
	pluginProjected   = "kubernetes.io/projected"
)

// Directory names under a pod's directory, as the kubelet's.
const (
	podsDirName       = "pods"
	volumesDirName    = "volumes"
	pluginsDirName    = "plugins"
	subPathsDirName   = "volume-subpaths"
	readyFileName     = "ready"
	podDirPerm        = 0o750
	emptyDirPerm      = 0o777
	nestedMountPerm   = 0o755
	readyDirPerm      = 0o750
	readyFilePerm     = 0o600
	subPathTargetPerm = 0o750
)

// layout computes the paths of pods and volumes under the agent's root
// directory. It is a pure value: nothing here touches the disk.
type layout struct {
	rootDir string
}

// escapePluginName turns a qualified plugin name into a directory name the
// way the kubelet does ("kubernetes.io/empty-dir" → "kubernetes.io~empty-dir").
func escapePluginName(name string) string {
	return strings.ReplaceAll(name, "/", "~")
}

func (l layout) podsDir() string { return filepath.Join(l.rootDir, podsDirName) }

func (l layout) podDir(uid types.UID) string { return filepath.Join(l.podsDir(), string(uid)) }

func (l layout) volumesDir(uid types.UID) string {
	return filepath.Join(l.podDir(uid), volumesDirName)
}

func (l layout) pluginsDir(uid types.UID) string {
	return filepath.Join(l.podDir(uid), pluginsDirName)
}

// volumeDir is where a volume's content lives and what is bind-mounted into
// containers.
func (l layout) volumeDir(uid types.UID, plugin, volName string) string {
	return filepath.Join(l.volumesDir(uid), escapePluginName(plugin), volName)
}

// readyFile marks an emptyDir (or the emptyDir wrapped by a content volume)
// as set up, so later syncs neither re-chmod nor re-chown what containers may
// have changed since.
func (l layout) readyFile(uid types.UID, volName string) string {
	return filepath.Join(l.pluginsDir(uid), escapePluginName(pluginEmptyDir), volName, readyFileName)
}

// subPathTarget is where a container's subPath mount is bind-mounted before
// it is handed to the runtime.
func subPathTarget(podDir, volName, containerName string, index int) string {
	return filepath.Join(podDir, subPathsDirName, volName, containerName, strconv.Itoa(index))
}
