package version

import (
	"os"
	"strings"
	"testing"
)

// TestKubernetesMatchesGoMod keeps Kubernetes in step with the k8s.io/api
// module the agent is built with: v0.X.Y of the libraries is Kubernetes
// v1.X.Y.
func TestKubernetesMatchesGoMod(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "k8s.io/api" {
			want := "v1." + strings.TrimPrefix(fields[1], "v0.")
			if Kubernetes != want {
				t.Errorf("Kubernetes = %s, but go.mod requires k8s.io/api %s: want %s", Kubernetes, fields[1], want)
			}
			return
		}
	}
	t.Fatal("no k8s.io/api requirement in go.mod")
}
