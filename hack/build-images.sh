#!/usr/bin/env bash
# Builds the test images as OCI archives, with no registry and no network:
#
#   _output/images/busybox.tar         localhost/busybox:test         Cmd ["sh"], user root
#   _output/images/pause.tar           localhost/pause:test           Entrypoint ["/pause"], user 65535
#   _output/images/distroless-app.tar  localhost/distroless-app:test  Entrypoint ["/app"], user 65532
#   _output/images/metrics-server.tar  localhost/metrics-server:test  Entrypoint ["/metrics-server"], user 65534
#
# busybox is Debian's static /bin/busybox with a symlink per applet in /bin.
# distroless-app has no shell and runs as 65532 ("nonroot"), like
# gcr.io/distroless/static:nonroot. A root debug container sees its processes;
# reading its files through /proc/PID/root needs CAP_SYS_PTRACE since the uids
# differ, or a pod with runAsUser: 0. pause runs as 65535 like
# registry.k8s.io/pause. metrics-server is the binary hack/build-metrics-server.sh
# builds, alone, like its upstream image.
#
# Load them with: ctr -n k8s.io --address SOCK images import FILE
# A stamp keyed by the sources, /bin/busybox and the Go version skips the
# rebuild when nothing changed; the archives are reproducible either way.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out="$EA_OUTPUT/images"
bin="$out/bin"
stamp="$out/.stamp"
images=(busybox pause distroless-app metrics-server)
path_env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Checked by package, not by path: Debian's plain busybox package installs a
# dynamically linked /bin/busybox, which cannot run in an image without libc.
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
	log "installing busybox-static"
	apt-get install -y -qq busybox-static >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq busybox-static >/dev/null; } ||
		die "cannot install busybox-static"
fi

# Cached: only a change to its module builds it again.
"$EA_ROOT/hack/build-metrics-server.sh"

# Relative paths keep the key the same in every clone.
key=$(cd "$EA_ROOT" && {
	go version
	sha256sum hack/build-images.sh /bin/busybox _output/bin/metrics-server
	find test/images -type f -name '*.go' ! -name '*_test.go' -print0 | sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-16)

up_to_date=true
[[ -f "$stamp" && "$(cat "$stamp")" == "$key" ]] || up_to_date=false
for i in "${images[@]}"; do
	[[ -f "$out/$i.tar" ]] || up_to_date=false
done
if $up_to_date; then
	log "images up to date in $out"
	exit 0
fi

log "building image binaries"
mkdir -p "$bin"
rm -f "$stamp"
for cmd in ociimage pause distroless-app; do
	(cd "$EA_ROOT" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags '-s -w' \
		-o "$bin/$cmd" "./test/images/$cmd")
done

etc="$out/etc"
mkdir -p "$etc"
cat >"$etc/busybox-passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
cat >"$etc/busybox-group" <<'EOF'
root:x:0:
nobody:x:65534:
EOF
cat >"$etc/nonroot-passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$etc/nonroot-group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF

log "building localhost/busybox:test"
applets=()
for a in $(/bin/busybox --list); do
	[[ "$a" == busybox ]] || applets+=(-symlink "/bin/$a:busybox")
done
"$bin/ociimage" -name localhost/busybox:test -o "$out/busybox.tar" \
	-file /bin/busybox:/bin/busybox:0755 "${applets[@]}" \
	-file "$etc/busybox-passwd:/etc/passwd:0644" -file "$etc/busybox-group:/etc/group:0644" \
	-dir /tmp:1777 -dir /root:0700 -dir /home:0755 \
	-env "$path_env" -cmd '["sh"]'

log "building localhost/pause:test"
"$bin/ociimage" -name localhost/pause:test -o "$out/pause.tar" \
	-file "$bin/pause:/pause:0755" \
	-env "$path_env" -entrypoint '["/pause"]' -user 65535:65535

log "building localhost/distroless-app:test"
"$bin/ociimage" -name localhost/distroless-app:test -o "$out/distroless-app.tar" \
	-file "$bin/distroless-app:/app:0755" \
	-file "$etc/nonroot-passwd:/etc/passwd:0644" -file "$etc/nonroot-group:/etc/group:0644" \
	-dir /tmp:1777 -dir /home/nonroot:0755 \
	-env "$path_env" -entrypoint '["/app"]' -user 65532:65532

log "building localhost/metrics-server:test"
"$bin/ociimage" -name localhost/metrics-server:test -o "$out/metrics-server.tar" \
	-file "$EA_BIN/metrics-server:/metrics-server:0755" -dir /tmp:1777 \
	-env "$path_env" -entrypoint '["/metrics-server"]' -user 65534:65534

echo "$key" >"$stamp"
log "images written to $out"
