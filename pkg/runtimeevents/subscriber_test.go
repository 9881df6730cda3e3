package runtimeevents

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/util/wait"
)

// eventService is a containerd event service that sends envelopes to
// every subscriber, then ends the stream.
type eventService struct {
	eventsapi.UnimplementedEventsServer
	envelopes []*types.Envelope
	// seen gets each subscription's namespace header and filters.
	seen chan []string
}

func (s *eventService) Subscribe(req *eventsapi.SubscribeRequest, stream eventsapi.Events_SubscribeServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	s.seen <- append(md.Get(namespaceHeader), req.GetFilters()...)
	for _, e := range s.envelopes {
		if err := stream.Send(e); err != nil {
			return err
		}
	}
	return nil
}

// Subscribe speaks containerd's event API: the namespace as containerd's
// header, the filters as given, envelopes decoded as the containerd client
// does; a stream that ends is an error, and a socket with no server fails
// the subscription at once.
func TestContainerdEventsSubscribe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), wait.ForeverTestTimeout)
	defer cancel()
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 5, 19, 0, 0, 0, time.UTC)
	exit, err := typeurl.MarshalAny(&apievents.TaskExit{ContainerID: "c1", ID: "c1", ExitStatus: 3})
	if err != nil {
		t.Fatal(err)
	}
	svc := &eventService{seen: make(chan []string, 1), envelopes: []*types.Envelope{{
		Timestamp: timestamppb.New(at), Namespace: DefaultNamespace, Topic: TopicTaskExit,
		Event: &anypb.Any{TypeUrl: exit.GetTypeUrl(), Value: exit.GetValue()},
	}}}
	srv := grpc.NewServer()
	eventsapi.RegisterEventsServer(srv, svc)
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()

	c, err := DialContainerd("unix://"+sock, DefaultNamespace)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	evs, errs := c.Subscribe(ctx, filters(DefaultNamespace)...)
	if got, want := <-svc.seen, append([]string{DefaultNamespace}, filters(DefaultNamespace)...); !slices.Equal(got, want) {
		t.Errorf("subscription sent %q, want %q", got, want)
	}
	env := <-evs
	if env.Topic != TopicTaskExit || env.Namespace != DefaultNamespace || !env.Timestamp.Equal(at) {
		t.Errorf("envelope %s %s %v, want %s %s %v", env.Topic, env.Namespace, env.Timestamp, TopicTaskExit, DefaultNamespace, at)
	}
	ev, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := ev.(*apievents.TaskExit); !ok || e.ContainerID != "c1" || e.ExitStatus != 3 {
		t.Errorf("event %#v, want the task exit sent", ev)
	}
	if err := <-errs; err == nil {
		t.Error("a stream the server ended gave no error")
	}

	down, err := DialContainerd(filepath.Join(t.TempDir(), "none.sock"), DefaultNamespace)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	_, errs = down.Subscribe(ctx)
	if err := <-errs; err == nil {
		t.Error("a subscription to a socket without a server gave no error")
	}
}
