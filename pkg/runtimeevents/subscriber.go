package runtimeevents

import (
	"context"
	"errors"
	"fmt"
	"strings"

	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	"github.com/containerd/containerd/v2/core/events"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// namespaceHeader is the gRPC metadata key containerd reads a request's
// namespace from.
const namespaceHeader = "containerd-namespace"

// ContainerdEvents is containerd's event service through its gRPC API
// (github.com/containerd/containerd/api), a Subscriber. It is what the
// watcher needs of containerd's Go client without the rest of the client:
// its image, content, snapshot, transfer and task services were most of
// the agent's binary beyond the Kubernetes libraries, and pages of them
// counted in the agent's resident memory.
type ContainerdEvents struct {
	conn      *grpc.ClientConn
	client    eventsapi.EventsClient
	namespace string
}

// DialContainerd returns containerd's event service on the socket at
// address (a path, or a unix:// URL), for namespace. It connects lazily:
// a socket that serves no containerd only fails the subscriptions.
func DialContainerd(address, namespace string) (*ContainerdEvents, error) {
	conn, err := grpc.NewClient("unix://"+strings.TrimPrefix(address, "unix://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	return &ContainerdEvents{conn: conn, client: eventsapi.NewEventsClient(conn), namespace: namespace}, nil
}

// Close closes the connection.
func (c *ContainerdEvents) Close() error { return c.conn.Close() }

// Subscribe subscribes to the events filters select (containerd's filter
// syntax); the subscription ends when errs yields an error or closes,
// which it does once ctx ends.
func (c *ContainerdEvents) Subscribe(ctx context.Context, filters ...string) (ch <-chan *events.Envelope, errs <-chan error) {
	evq := make(chan *events.Envelope)
	errq := make(chan error, 1)
	if c.namespace != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, namespaceHeader, c.namespace)
	}
	stream, err := c.client.Subscribe(ctx, &eventsapi.SubscribeRequest{Filters: filters})
	if err != nil {
		errq <- fmt.Errorf("subscribe to containerd events: %w", err)
		close(errq)
		return evq, errq
	}
	go func() {
		defer close(errq)
		for {
			ev, err := stream.Recv()
			if err != nil {
				if ctx.Err() == nil {
					errq <- fmt.Errorf("receive containerd event: %w", err)
				}
				return
			}
			env := &events.Envelope{Namespace: ev.GetNamespace(), Topic: ev.GetTopic(), Event: ev.GetEvent()}
			if ts := ev.GetTimestamp(); ts != nil {
				env.Timestamp = ts.AsTime()
			}
			select {
			case evq <- env:
			case <-ctx.Done():
				if err := ctx.Err(); !errors.Is(err, context.Canceled) {
					errq <- err
				}
				return
			}
		}
	}()
	return evq, errq
}
