package server

import (
	"bytes"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestEnsureSelfSignedCert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ip := net.ParseIP("10.0.0.12")
	now := time.Now()

	certFile, keyFile, generated, err := EnsureSelfSignedCert(dir, "node-1", []net.IP{ip}, now)
	if err != nil || !generated {
		t.Fatalf("first call: generated %v, %v", generated, err)
	}
	if filepath.Base(certFile) != "kubelet.crt" || filepath.Base(keyFile) != "kubelet.key" {
		t.Errorf("files %s %s, want kubelet.crt and kubelet.key", certFile, keyFile)
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if leaf.VerifyHostname("node-1") != nil || leaf.VerifyHostname("10.0.0.12") != nil {
		t.Errorf("certificate names %v %v, want node-1 and 10.0.0.12", leaf.DNSNames, leaf.IPAddresses)
	}
	first, _ := os.ReadFile(certFile)

	for _, tc := range []struct {
		name    string
		host    string
		ips     []net.IP
		now     time.Time
		newPair bool
	}{
		{"restart reuses", "node-1", []net.IP{ip}, now, false},
		{"subset of names reuses", "node-1", nil, now, false},
		{"renamed node", "node-2", []net.IP{ip}, now, true},
		{"moved node", "node-2", []net.IP{net.ParseIP("10.0.0.13")}, now, true},
		{"expired", "node-2", []net.IP{net.ParseIP("10.0.0.13")}, now.Add(2 * 365 * 24 * time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadFile(certFile)
			_, _, generated, err := EnsureSelfSignedCert(dir, tc.host, tc.ips, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadFile(certFile)
			if generated != tc.newPair || bytes.Equal(before, after) == tc.newPair {
				t.Errorf("generated %v, changed %v; want %v", generated, !bytes.Equal(before, after), tc.newPair)
			}
			if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
				t.Errorf("pair does not load: %v", err)
			}
		})
	}
	if now, _ := os.ReadFile(certFile); bytes.Equal(now, first) {
		t.Error("certificate never replaced")
	}

	// A corrupt certificate is replaced, not fatal.
	if err := os.WriteFile(certFile, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, generated, err := EnsureSelfSignedCert(dir, "node-1", nil, time.Now()); err != nil || !generated {
		t.Errorf("corrupt certificate: generated %v, %v", generated, err)
	}
}
