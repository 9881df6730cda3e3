package server

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	certutil "k8s.io/client-go/util/cert"
)

// The self-signed pair's file names in the cert directory, the kubelet's.
const (
	selfSignedCertName = "kubelet.crt"
	selfSignedKeyName  = "kubelet.key"
)

// EnsureSelfSignedCert returns a serving certificate and key in dir
// (kubelet.crt, kubelet.key), as the kubelet does without
// --tls-cert-file. A pair already there is reused, so clients that pinned it
// keep working across restarts, unless it has expired or does not cover
// host and ips (the node was renamed or moved); then a new self-signed pair
// valid for a year replaces it. generated tells which.
//
// kube-apiserver verifies the agent against --kubelet-certificate-authority
// when it has one; such clusters need a certificate signed by that CA, not
// this one.
func EnsureSelfSignedCert(dir, host string, ips []net.IP, now time.Time) (certFile, keyFile string, generated bool, err error) {
	certFile, keyFile = filepath.Join(dir, selfSignedCertName), filepath.Join(dir, selfSignedKeyName)
	if err := coversAndValid(certFile, keyFile, host, ips, now); err == nil {
		return certFile, keyFile, false, nil
	}
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(host, ips, nil)
	if err != nil {
		return "", "", false, fmt.Errorf("generate self-signed serving certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", "", false, fmt.Errorf("create cert dir: %w", err)
	}
	// The key first: a crash in between leaves a certificate that fails
	// to match it, and the next start generates both again.
	if err := writeAtomic(keyFile, keyPEM, 0o600); err != nil {
		return "", "", false, err
	}
	if err := writeAtomic(certFile, certPEM, 0o644); err != nil {
		return "", "", false, err
	}
	return certFile, keyFile, true, nil
}

// coversAndValid checks an existing pair: it loads, its leaf is valid at
// now and names host and every IP.
func coversAndValid(certFile, keyFile, host string, ips []net.IP, now time.Time) error {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	if _, err := os.Stat(keyFile); err != nil {
		return err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return errors.New("no PEM certificate")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return errors.New("certificate expired or not yet valid")
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return err
	}
	for _, ip := range ips {
		if err := leaf.VerifyHostname(ip.String()); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
