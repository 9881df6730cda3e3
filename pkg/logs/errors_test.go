package logs

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

func TestResolveFailure(t *testing.T) {
	for _, tc := range []struct {
		err      error
		wantCode int
		wantMsg  string
	}{
		{fmt.Errorf("lookup: %w", podstate.ErrPodNotFound), http.StatusNotFound, `pod "web" does not exist`},
		{podstate.ErrContainerNotFound, http.StatusNotFound, `container "app" not found in pod "web"`},
		{ErrPreviousNotFound, http.StatusBadRequest, `previous terminated container "app" in pod "web" not found`},
		{&WaitingError{Reason: "ContainerCreating"}, http.StatusBadRequest, `container "app" in pod "web" is waiting to start: ContainerCreating`},
		{fmt.Errorf("sync: %w", &WaitingError{Reason: "ErrImagePull"}), http.StatusBadRequest, `container "app" in pod "web" is waiting to start: image can't be pulled`},
		{&WaitingError{Reason: "ImagePullBackOff"}, http.StatusBadRequest, `container "app" in pod "web" is waiting to start: trying and failing to pull image`},
		{&WaitingError{}, http.StatusBadRequest, `container "app" in pod "web" is waiting to start - no logs yet`},
		{errors.New("pod cache not synced"), http.StatusBadRequest, "pod cache not synced"},
	} {
		t.Run(tc.wantMsg, func(t *testing.T) {
			code, msg := resolveFailure(tc.err, "web", "app")
			if code != tc.wantCode || msg != tc.wantMsg {
				t.Errorf("got %d %q, want %d %q", code, msg, tc.wantCode, tc.wantMsg)
			}
		})
	}
}
