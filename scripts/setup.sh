#!/usr/bin/env bash
# Installs what the studio needs on a Debian machine. Idempotent: a second run
# changes nothing and prints one line per part that is already in place.
#
#   scripts/setup.sh run     # to build and run: Go toolchain check + ONNX Runtime
#   scripts/setup.sh test    # also Redis, Chromium, and the Python training stack
#   scripts/setup.sh train   # the Python training stack alone (make data, make train)
#
# ONNX Runtime 1.24.3 (the C API that github.com/yalue/onnxruntime_go v1.27.0
# is built against) comes from the npm package onnxruntime-node@1.24.3, the one
# registry package that ships the Linux x64 shared library. It is verified
# against a pinned sha256 and installed under .deps/ (ignored by git).
set -euo pipefail

ORT_VERSION=1.24.3
ORT_SHA256=92ba8e44d31b80a34f5e805076a044122c3be1fffe0d88ed790de7267b0b2682
ORT_MEMBER=package/bin/napi-v6/linux/x64/libonnxruntime.so.1

root=$(cd "$(dirname "$0")/.." && pwd)
deps="$root/.deps"
ort_lib="$deps/onnxruntime/lib/libonnxruntime.so.$ORT_VERSION"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$ORT_SHA256" ]; }

need_go() {
	command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] ||
		die "Go 1.26 is not installed (expected on PATH or at /usr/local/go)"
	command -v gcc >/dev/null 2>&1 || apt_install gcc
	say "go: $(PATH="$PATH:/usr/local/go/bin" go version | cut -d' ' -f3) present"
}

install_ort() {
	if sha_ok "$ort_lib"; then
		say "onnxruntime $ORT_VERSION present ($ort_lib)"
		return
	fi
	command -v npm >/dev/null 2>&1 || apt_install npm
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	say "fetching onnxruntime-node@$ORT_VERSION from the npm registry"
	(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
	tar -xzf "$tmp"/onnxruntime-node-"$ORT_VERSION".tgz -C "$tmp" "$ORT_MEMBER"
	sha_ok "$tmp/$ORT_MEMBER" || die "sha256 of $ORT_MEMBER does not match $ORT_SHA256; refusing to install"
	mkdir -p "$(dirname "$ort_lib")"
	install -m 0644 "$tmp/$ORT_MEMBER" "$ort_lib"
	ln -sf "libonnxruntime.so.$ORT_VERSION" "$deps/onnxruntime/lib/libonnxruntime.so"
	say "onnxruntime $ORT_VERSION installed at $ort_lib"
}

apt_updated=0
apt_install() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "apt: $* present"
		return
	fi
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	if [ "$apt_updated" -eq 0 ]; then
		$sudo apt-get update -o DPkg::Lock::Timeout=300 -qq
		apt_updated=1
	fi
	say "apt: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
		--no-install-recommends "${missing[@]}" >/dev/null
}

case "${1:-run}" in
run)
	need_go
	install_ort
	;;
test)
	need_go
	install_ort
	apt_install redis-server chromium fonts-liberation \
		python3-torch python3-onnx python3-pytest python3-numpy python3-pil
	;;
train)
	# make data / make train: the sample-world maker and the training code (Debian's Python)
	apt_install python3-torch python3-onnx python3-numpy python3-pil
	;;
*)
	die "unknown target '$1' (want: run | test | train)"
	;;
esac
