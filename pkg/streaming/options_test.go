package streaming

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParseStreamOptions(t *testing.T) {
	for _, tc := range []struct {
		query   string
		want    streamOptions
		wantErr string
	}{
		{query: "input=1&output=1&error=1", want: streamOptions{Stdin: true, Stdout: true, Stderr: true}},
		{query: "output=1", want: streamOptions{Stdout: true}},
		{query: "stdin=true&stdout=true", want: streamOptions{Stdin: true, Stdout: true}},
		// The kubelet's name wins over the PodExecOptions one.
		{query: "input=0&stdin=1&output=1", want: streamOptions{Stdout: true}},
		{query: "input=1&output=1&error=1&tty=1", want: streamOptions{Stdin: true, Stdout: true, TTY: true}},
		{query: "output=yes&input=1", want: streamOptions{Stdin: true}},
		{query: "tty=1", wantErr: "at least 1 of stdin, stdout, stderr"},
		{query: "", wantErr: "at least 1 of stdin, stdout, stderr"},
		{query: "error=1&tty=1", wantErr: "at least 1 of stdin, stdout, stderr"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			got, err := parseStreamOptions(q)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		query   string
		want    []int32
		wantErr string
	}{
		{query: "", want: nil},
		{query: "port=8080", want: []int32{8080}},
		{query: "port=80&port=443,8443", want: []int32{80, 443, 8443}},
		{query: "port=", wantErr: "cannot be empty"},
		{query: "port=0", wantErr: "must be > 0"},
		{query: "port=65536", wantErr: "unable to parse"},
		{query: "port=http", wantErr: "unable to parse"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			got, err := parsePorts(q)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestStatusLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code int
		ok   bool
	}{
		{"HTTP/1.1 101 Switching Protocols\r\n", 101, true},
		{"HTTP/1.0 404 Not Found\r\n", 404, true},
		{"HTTP/1.1 1", 0, false},
		{"\x80\x03\x00\x02", 0, false},
	} {
		code, ok := statusLine([]byte(tc.in))
		if code != tc.code || ok != tc.ok {
			t.Errorf("statusLine(%q) = %d %v, want %d %v", tc.in, code, ok, tc.code, tc.ok)
		}
	}
}
