package logs

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ephemeral-agent/ephemeral-agent/pkg/podstate"
)

// resolveFailure turns a Resolver error into the kubelet's status and
// message for the same situation.
func resolveFailure(err error, podName, containerName string) (int, string) {
	var waiting *WaitingError
	switch {
	case errors.Is(err, podstate.ErrPodNotFound):
		return http.StatusNotFound, fmt.Sprintf("pod %q does not exist", podName)
	case errors.Is(err, podstate.ErrContainerNotFound):
		return http.StatusNotFound, fmt.Sprintf("container %q not found in pod %q", containerName, podName)
	case errors.Is(err, ErrPreviousNotFound):
		return http.StatusBadRequest, fmt.Sprintf("previous terminated container %q in pod %q not found", containerName, podName)
	case errors.As(err, &waiting):
		return http.StatusBadRequest, waitingMessage(waiting.Reason, podName, containerName)
	default:
		return http.StatusBadRequest, err.Error()
	}
}

// waitingMessage spells out the commonest waiting reasons, as the kubelet
// does.
func waitingMessage(reason, podName, containerName string) string {
	switch reason {
	case "":
		return fmt.Sprintf("container %q in pod %q is waiting to start - no logs yet", containerName, podName)
	case "ErrImagePull":
		return fmt.Sprintf("container %q in pod %q is waiting to start: image can't be pulled", containerName, podName)
	case "ImagePullBackOff":
		return fmt.Sprintf("container %q in pod %q is waiting to start: trying and failing to pull image", containerName, podName)
	default:
		return fmt.Sprintf("container %q in pod %q is waiting to start: %v", containerName, podName, reason)
	}
}
