package streaming

import (
	"context"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"
)

// The default limit on refusal records: a burst of 100, then one a second,
// which bounds a sustained flood to about 86,400 lines (some tens of MB) a
// day.
const (
	DefaultRefusalBurst = 100
	DefaultRefusalRate  = rate.Limit(1)
)

// Who a request that failed authentication is recorded as: the names
// Kubernetes gives a caller without credentials.
const (
	unauthenticatedUser  = user.Anonymous
	unauthenticatedGroup = user.AllUnauthenticated
)

// Size caps on what a refusal record copies from the request, which anyone
// who can reach the port controls: a record stays a few kB however large
// the request line.
const (
	maxFieldBytes  = 256
	maxReasonBytes = 1024
	maxListItems   = 32
)

// RefusalLimit bounds how many refused requests are recorded: a token
// bucket of Burst records refilled at Rate a second. The zero value means
// DefaultRefusalBurst and DefaultRefusalRate.
type RefusalLimit struct {
	Rate  rate.Limit
	Burst int
}

// Refusals records requests to the debug routes (/exec, /attach,
// /portForward) that the agent API's guard refused, 401 or 403 (or 500
// when authorization could not be decided): who, which route, pod,
// container and command, and the status, as one audit Record each, in the
// Auditor's file and the agent log. Refused requests to other routes are
// not recorded.
//
// Records are rate-limited so that a flood of refused requests cannot fill
// the disk: those over the limit are counted, in the next record written
// (RefusalsDropped) and in the metrics, not recorded. Refusals satisfies
// auth.RefusalRecorder and is safe for concurrent use.
type Refusals struct {
	auditor *Auditor
	metrics *Metrics
	now     func() time.Time

	mu      sync.Mutex
	limiter *rate.Limiter
	dropped int64
}

// NewRefusals returns Refusals writing to a (nil only logs) and counting
// in m (nil counts nothing).
func NewRefusals(a *Auditor, m *Metrics, limit RefusalLimit) *Refusals {
	if limit.Rate == 0 && limit.Burst == 0 {
		limit = RefusalLimit{Rate: DefaultRefusalRate, Burst: DefaultRefusalBurst}
	}
	return &Refusals{auditor: a, metrics: m, now: time.Now, limiter: rate.NewLimiter(limit.Rate, limit.Burst)}
}

// RecordRefusal records the refused request r, made by u (nil when it
// failed authentication), answered status for reason.
func (f *Refusals) RecordRefusal(ctx context.Context, r *http.Request, u user.Info, status int, reason string) {
	now := f.now()
	rec, ok := refusalRecord(r, u, status, reason, now)
	if !ok {
		return
	}
	f.metrics.refused(rec.Kind, status)

	f.mu.Lock()
	allowed := f.limiter.AllowN(now, 1)
	if allowed {
		rec.RefusalsDropped, f.dropped = f.dropped, 0
	} else {
		f.dropped++
	}
	f.mu.Unlock()
	if !allowed {
		f.metrics.refusalDropped()
		return
	}

	kv := []any{"kind", rec.Kind, "user", rec.User, "groups", rec.Groups, "sourceAddress", rec.SourceAddress,
		"pod", klog.KRef(rec.Namespace, rec.Pod), "status", rec.Status, "reason", rec.Error}
	if rec.Container != "" {
		kv = append(kv, "containerName", rec.Container)
	}
	if rec.Command != nil {
		kv = append(kv, "command", rec.Command)
	}
	if rec.RefusalsDropped > 0 {
		kv = append(kv, "refusalsDropped", rec.RefusalsDropped)
	}
	klog.FromContext(ctx).Info("Refused request to a debug route", kv...)
	f.auditor.write(ctx, rec)
}

// refusalRecord describes a refused request; ok is false when r is not to
// a debug route.
func refusalRecord(r *http.Request, u user.Info, status int, reason string, now time.Time) (*Record, bool) {
	kind, segs, ok := debugRoute(r.URL.EscapedPath())
	if !ok {
		return nil, false
	}
	rec := &Record{
		Kind: kind, StartTime: now, EndTime: now, Status: status, Error: clip(reason, maxReasonBytes),
		SourceAddress: clip(r.RemoteAddr, maxFieldBytes),
		ForwardedFor:  clip(r.Header.Get("X-Forwarded-For"), maxFieldBytes),
		UserAgent:     clip(r.UserAgent(), maxFieldBytes),
	}
	if u == nil {
		rec.User, rec.Groups = unauthenticatedUser, []string{unauthenticatedGroup}
	} else {
		rec.User, rec.UID, rec.Groups = clip(u.GetName(), maxFieldBytes), clip(u.GetUID(), maxFieldBytes), clipList(u.GetGroups())
	}

	// Path segments as the routes name them: namespace, pod, then the
	// optional UID and, but for port-forward, the container. A path that
	// fits no route keeps what it has.
	at := func(i int) string {
		if i < len(segs) {
			return clip(segs[i], maxFieldBytes)
		}
		return ""
	}
	rec.Namespace, rec.Pod = at(0), at(1)
	switch {
	case kind == KindPortForward:
		rec.PodUID = at(2)
	case len(segs) >= 4:
		rec.PodUID, rec.Container = at(2), at(3)
	default:
		rec.Container = at(2)
	}

	q := r.URL.Query()
	switch kind {
	case KindExec:
		rec.Command = clipList(q["command"])
		fallthrough
	case KindAttach:
		// Malformed options are recorded as far as they parse.
		streams, _ := parseStreamOptions(q)
		rec.Stdin, rec.TTY = streams.Stdin, streams.TTY
	case KindPortForward:
		for _, v := range q["port"] {
			if len(rec.Ports) == maxListItems {
				break
			}
			if p, err := strconv.ParseUint(v, 10, 16); err == nil {
				rec.Ports = append(rec.Ports, int32(p))
			}
		}
	}
	return rec, true
}

// debugRoutes are the path prefixes of the debug routes, by kind.
var debugRoutes = []struct{ prefix, kind string }{
	{"/exec/", KindExec},
	{"/attach/", KindAttach},
	{"/portForward/", KindPortForward},
}

// debugRoute returns the kind of debug route an escaped path is under, and
// its unescaped segments after the prefix. The path is cleaned first, as
// the server's ServeMux would before routing it.
func debugRoute(escaped string) (kind string, segs []string, ok bool) {
	p := path.Clean("/" + escaped)
	for _, r := range debugRoutes {
		rest, found := strings.CutPrefix(p, r.prefix)
		if !found {
			continue
		}
		for s := range strings.SplitSeq(rest, "/") {
			if u, err := url.PathUnescape(s); err == nil {
				s = u
			}
			segs = append(segs, s)
			if len(segs) == 5 {
				break
			}
		}
		return r.kind, segs, true
	}
	return "", nil, false
}

// clip cuts s to at most n bytes, on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "...(truncated)"
}

// clipList keeps the first maxListItems of l, each clipped.
func clipList(l []string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, 0, min(len(l), maxListItems))
	for _, s := range l[:min(len(l), maxListItems)] {
		out = append(out, clip(s, maxFieldBytes))
	}
	return out
}
