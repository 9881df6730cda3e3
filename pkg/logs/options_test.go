package logs

import (
	"net/url"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestDecodeOptions(t *testing.T) {
	sinceTime := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Local())
	for _, tc := range []struct {
		name    string
		query   string
		want    v1.PodLogOptions
		wantErr string
	}{
		{name: "empty", query: "", want: v1.PodLogOptions{Stream: ptr.To("All")}},
		{name: "all set", query: "follow=true&previous=1&timestamps=yes&sinceSeconds=10&tailLines=3&limitBytes=100&stream=Stderr",
			want: v1.PodLogOptions{Follow: true, Previous: true, Timestamps: true, SinceSeconds: ptr.To[int64](10),
				TailLines: ptr.To[int64](3), LimitBytes: ptr.To[int64](100), Stream: ptr.To("Stderr")}},
		{name: "false and 0 are false", query: "follow=false&previous=0&timestamps=FALSE",
			want: v1.PodLogOptions{Stream: ptr.To("All")}},
		{name: "empty bool is true", query: "follow=", want: v1.PodLogOptions{Follow: true, Stream: ptr.To("All")}},
		{name: "first value counts", query: "tailLines=1&tailLines=2", want: v1.PodLogOptions{TailLines: ptr.To[int64](1), Stream: ptr.To("All")}},
		{name: "sinceTime", query: "sinceTime=2026-01-02T03:04:05Z", want: v1.PodLogOptions{SinceTime: &sinceTime, Stream: ptr.To("All")}},
		{name: "old tail", query: "tail=5", want: v1.PodLogOptions{TailLines: ptr.To[int64](5), Stream: ptr.To("All")}},
		{name: "old tail all", query: "tail=all&tailLines=5", want: v1.PodLogOptions{Stream: ptr.To("All")}},
		{name: "bad int", query: "sinceSeconds=abc", wantErr: "sinceSeconds"},
		{name: "bad time", query: "sinceTime=yesterday", wantErr: "sinceTime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeOptions(q)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalOptions(*got, tc.want) {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func equalOptions(a, b v1.PodLogOptions) bool {
	eqInt := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqTime := func(x, y *metav1.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(y)) }
	eqStr := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Follow == b.Follow && a.Previous == b.Previous && a.Timestamps == b.Timestamps &&
		eqInt(a.SinceSeconds, b.SinceSeconds) && eqInt(a.TailLines, b.TailLines) && eqInt(a.LimitBytes, b.LimitBytes) &&
		eqTime(a.SinceTime, b.SinceTime) && eqStr(a.Stream, b.Stream)
}

func TestValidateOptions(t *testing.T) {
	now := metav1.Now()
	for _, tc := range []struct {
		name string
		opts v1.PodLogOptions
		want string // substring of the error; empty for valid
	}{
		{name: "defaults", opts: v1.PodLogOptions{Stream: ptr.To("All")}},
		{name: "tailLines 0", opts: v1.PodLogOptions{TailLines: ptr.To[int64](0)}},
		{name: "negative tailLines", opts: v1.PodLogOptions{TailLines: ptr.To[int64](-1)}, want: "tailLines: Invalid value: -1: must be greater than or equal to 0"},
		{name: "limitBytes 0", opts: v1.PodLogOptions{LimitBytes: ptr.To[int64](0)}, want: "limitBytes: Invalid value: 0: must be greater than 0"},
		{name: "sinceSeconds 0", opts: v1.PodLogOptions{SinceSeconds: ptr.To[int64](0)}, want: "sinceSeconds: Invalid value: 0: must be greater than 0"},
		{name: "both since", opts: v1.PodLogOptions{SinceSeconds: ptr.To[int64](5), SinceTime: &now}, want: "at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{name: "unknown stream", opts: v1.PodLogOptions{Stream: ptr.To("stdout")}, want: `stream: Unsupported value: "stdout": supported values: "All", "Stderr", "Stdout"`},
		{name: "stream with tailLines", opts: v1.PodLogOptions{Stream: ptr.To("Stdout"), TailLines: ptr.To[int64](1)}, want: "`tailLines` and specific `stream` are mutually exclusive for now"},
		{name: "All with tailLines", opts: v1.PodLogOptions{Stream: ptr.To("All"), TailLines: ptr.To[int64](1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := validateOptions(&tc.opts)
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Errorf("unexpected errors: %v", errs)
			case tc.want != "" && !strings.Contains(errs.ToAggregate().Error(), tc.want):
				t.Errorf("errors = %v, want one containing %q", errs, tc.want)
			}
		})
	}
}

func TestReadOptions(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(d)); return &t }
	for _, tc := range []struct {
		name string
		opts v1.PodLogOptions
		want time.Time
	}{
		{"no since", v1.PodLogOptions{}, time.Time{}},
		{"sinceSeconds", v1.PodLogOptions{SinceSeconds: ptr.To[int64](60)}, now.Add(-time.Minute)},
		{"sinceTime", v1.PodLogOptions{SinceTime: at(-time.Hour)}, now.Add(-time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readOptions(&tc.opts, now)
			if !got.Since.Equal(tc.want) {
				t.Errorf("Since = %v, want %v", got.Since, tc.want)
			}
		})
	}
	opts := &v1.PodLogOptions{Follow: true, Timestamps: true, TailLines: ptr.To[int64](2), LimitBytes: ptr.To[int64](9)}
	got := readOptions(opts, now)
	if !got.Follow || !got.Timestamp || *got.TailLines != 2 || *got.LimitBytes != 9 {
		t.Errorf("got %+v, want follow, timestamps, tail 2, limit 9", got)
	}
}
