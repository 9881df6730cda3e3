package logs

import (
	"fmt"
	"maps"
	"net/url"
	"time"

	v1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	crilogs "k8s.io/cri-client/pkg/logs"
	"k8s.io/utils/ptr"
)

// decodeOptions reads PodLogOptions from the query the way the kubelet's
// parameter codec does (the generated url.Values conversion): the first value
// of each parameter counts, a bool is false only for "0" or "false", and
// "tail" is the old spelling of tailLines, with "all" meaning no limit.
// Like the kubelet with PodLogsQuerySplitStreams on, stream defaults to All.
func decodeOptions(query url.Values) (*v1.PodLogOptions, error) {
	if tail := query.Get("tail"); tail != "" {
		query = maps.Clone(query)
		query["tailLines"] = []string{tail}
		if tail == "all" {
			delete(query, "tailLines")
		}
	}
	opts := &v1.PodLogOptions{}
	for _, b := range []struct {
		name string
		out  *bool
	}{
		{"follow", &opts.Follow},
		{"previous", &opts.Previous},
		{"timestamps", &opts.Timestamps},
	} {
		if values := query[b.name]; len(values) > 0 {
			if err := runtime.Convert_Slice_string_To_bool(&values, b.out, nil); err != nil {
				return nil, fmt.Errorf("%s: %w", b.name, err)
			}
		}
	}
	for _, n := range []struct {
		name string
		out  **int64
	}{
		{"sinceSeconds", &opts.SinceSeconds},
		{"tailLines", &opts.TailLines},
		{"limitBytes", &opts.LimitBytes},
	} {
		if values := query[n.name]; len(values) > 0 {
			if err := runtime.Convert_Slice_string_To_Pointer_int64(&values, n.out, nil); err != nil {
				return nil, fmt.Errorf("%s: %w", n.name, err)
			}
		}
	}
	if values := query["sinceTime"]; len(values) > 0 {
		if err := metav1.Convert_Slice_string_To_Pointer_v1_Time(&values, &opts.SinceTime, nil); err != nil {
			return nil, fmt.Errorf("sinceTime: %w", err)
		}
	}
	if values := query["stream"]; len(values) > 0 {
		opts.Stream = ptr.To(values[0])
	} else {
		opts.Stream = ptr.To(v1.LogStreamAll)
	}
	return opts, nil
}

// validateOptions is the kubelet's check of the v1 PodLogOptions
// (pkg/apis/core/v1/validation.ValidatePodLogOptions), word for word, so
// that a direct client gets the same answers as from the API server.
func validateOptions(opts *v1.PodLogOptions) field.ErrorList {
	var errs field.ErrorList
	if opts.TailLines != nil && *opts.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *opts.TailLines, apivalidation.IsNegativeErrorMsg))
	}
	if opts.LimitBytes != nil && *opts.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *opts.LimitBytes, "must be greater than 0"))
	}
	switch {
	case opts.SinceSeconds != nil && opts.SinceTime != nil:
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	case opts.SinceSeconds != nil:
		if *opts.SinceSeconds < 1 {
			errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *opts.SinceSeconds, "must be greater than 0"))
		}
	}
	if opts.Stream != nil {
		switch *opts.Stream {
		case v1.LogStreamAll, v1.LogStreamStdout, v1.LogStreamStderr:
		default:
			// A fixed order, where the kubelet's set has none, so the
			// message reads the same on every request.
			supported := []string{v1.LogStreamAll, v1.LogStreamStderr, v1.LogStreamStdout}
			errs = append(errs, field.NotSupported(field.NewPath("stream"), *opts.Stream, supported))
		}
		if *opts.Stream != v1.LogStreamAll && opts.TailLines != nil {
			errs = append(errs, field.Forbidden(field.NewPath(""), "`tailLines` and specific `stream` are mutually exclusive for now"))
		}
	}
	return errs
}

// readOptions converts the API options into cri-client's, as the kubelet's
// kuberuntime ReadLogs does: sinceSeconds counts back from now, and of
// sinceSeconds and sinceTime the later one wins.
func readOptions(opts *v1.PodLogOptions, now time.Time) *crilogs.LogOptions {
	out := &crilogs.LogOptions{
		TailLines:  opts.TailLines,
		LimitBytes: opts.LimitBytes,
		Follow:     opts.Follow,
		Timestamp:  opts.Timestamps,
	}
	if opts.SinceSeconds != nil {
		out.Since = now.Add(-time.Duration(*opts.SinceSeconds) * time.Second)
	}
	if opts.SinceTime != nil && opts.SinceTime.After(out.Since) {
		out.Since = opts.SinceTime.Time
	}
	return out
}
