package cm

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestHierarchyNames(t *testing.T) {
	const uid = types.UID("6a7b-11")
	for _, tc := range []struct {
		root   string
		driver Driver
		qos    v1.PodQOSClass
		want   string
	}{
		{"/", DriverCgroupfs, v1.PodQOSGuaranteed, "/kubepods/pod6a7b-11"},
		{"/", DriverCgroupfs, v1.PodQOSBurstable, "/kubepods/burstable/pod6a7b-11"},
		{"/", DriverCgroupfs, v1.PodQOSBestEffort, "/kubepods/besteffort/pod6a7b-11"},
		{"/ea-e2e/", DriverCgroupfs, v1.PodQOSBurstable, "/ea-e2e/kubepods/burstable/pod6a7b-11"},
		{"", DriverCgroupfs, v1.PodQOSGuaranteed, "/kubepods/pod6a7b-11"},
		{"/", DriverSystemd, v1.PodQOSGuaranteed, "/kubepods.slice/kubepods-pod6a7b_11.slice"},
		{"/", DriverSystemd, v1.PodQOSBurstable, "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6a7b_11.slice"},
		{"/", DriverSystemd, v1.PodQOSBestEffort, "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod6a7b_11.slice"},
		{"/ea-e2e", DriverSystemd, v1.PodQOSBurstable, "/ea_e2e.slice/ea_e2e-kubepods.slice/ea_e2e-kubepods-burstable.slice/ea_e2e-kubepods-burstable-pod6a7b_11.slice"},
	} {
		h := Hierarchy{Root: ParseCgroupfs(tc.root), Driver: tc.driver}
		if got := h.Literal(h.Pod(tc.qos, uid)); got != tc.want {
			t.Errorf("%s %s %s: %q, want %q", tc.root, tc.driver, tc.qos, got, tc.want)
		}
	}
	if got := (Hierarchy{Driver: DriverSystemd}).Literal(CgroupName{}); got != "/" {
		t.Errorf("systemd root = %q", got)
	}
}

func TestPodUIDFromDir(t *testing.T) {
	for dir, want := range map[string]types.UID{
		"pod6a7b-11":                            "6a7b-11",
		"kubepods-burstable-pod6a7b_11.slice":   "6a7b-11",
		"kubepods-pod6a7b_11.slice":             "6a7b-11",
		"ea_e2e-kubepods-besteffort-podx.slice": "x",
		"burstable":                             "",
		"besteffort":                            "",
		"kubepods-burstable.slice":              "",
		"pod":                                   "",
		"cri-containerd-abc.scope":              "",
	} {
		got, ok := PodUIDFromDir(dir)
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", dir, got, ok, want)
		}
	}
}

func TestParseDriver(t *testing.T) {
	for _, s := range []string{"cgroupfs", "systemd"} {
		if d, err := ParseDriver(s); err != nil || string(d) != s {
			t.Errorf("%s: %q %v", s, d, err)
		}
	}
	if _, err := ParseDriver("Systemd"); err == nil {
		t.Error("Systemd accepted")
	}
}
