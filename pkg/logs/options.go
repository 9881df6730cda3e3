package logs

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"time"

	v1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
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
	// Every parameter is decoded; cmp.Or returns the first error, in this
	// order.
	if err := cmp.Or(
		decodeParam(query, "follow", &opts.Follow, runtime.Convert_Slice_string_To_bool),
		decodeParam(query, "previous", &opts.Previous, runtime.Convert_Slice_string_To_bool),
		decodeParam(query, "timestamps", &opts.Timestamps, runtime.Convert_Slice_string_To_bool),
		decodeParam(query, "sinceSeconds", &opts.SinceSeconds, runtime.Convert_Slice_string_To_Pointer_int64),
		decodeParam(query, "tailLines", &opts.TailLines, runtime.Convert_Slice_string_To_Pointer_int64),
		decodeParam(query, "limitBytes", &opts.LimitBytes, runtime.Convert_Slice_string_To_Pointer_int64),
		decodeParam(query, "sinceTime", &opts.SinceTime, metav1.Convert_Slice_string_To_Pointer_v1_Time),
	); err != nil {
		return nil, err
	}
	if values := query["stream"]; len(values) > 0 {
		opts.Stream = ptr.To(values[0])
	} else {
		opts.Stream = ptr.To(v1.LogStreamAll)
	}
	return opts, nil
}

// decodeParam sets *out from the query parameter name, when it is given,
// with one of the generated url.Values conversions.
func decodeParam[T any](query url.Values, name string, out *T, convert func(in *[]string, out *T, s conversion.Scope) error) error {
	values := query[name]
	if len(values) == 0 {
		return nil
	}
	if err := convert(&values, out, nil); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
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
