#!/usr/bin/env bash
# Installs and builds what the interoperability tests (tests/interop) need, offline after the
# package installs:
#   1. Debian packages (Go toolchain, grpc-go and protobuf Go sources, protoc and its Go
#      plugins, openssl, Node.js, and nghttpx for the sidecar baseline of
#      benchmarks/server.py) - only those that are missing;
#   2. the Node.js client's npm dependencies (npm ci from the committed package-lock.json) -
#      only when interop/node/node_modules is missing or older than the lockfile;
#   3. Go code generated from interop/proto/helloworld.proto into interop/build/;
#   4. the Go client and server, built in GOPATH mode against Debian's Go sources
#      (/usr/share/gocode), into interop/build/bin/, and crlcheck (standard library only).
# Safe to run again: steps with nothing to do say so. Exits non-zero with a message naming the
# failed step. Everything it builds lives under interop/build/ (not committed).
set -Eeuo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$HERE/build"
START=$SECONDS

say() { printf '[interop] %s\n' "$*"; }
die() {
    printf '[interop] FAILED: %s\n' "$*" >&2
    exit 1
}
trap 'die "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

# -- 1. Debian packages -----------------------------------------------------------------------
# golang-github-golang-protobuf-1-5-dev is named explicitly: golang-google-grpc-dev accepts the
# 1.3 or the 1.5 API, and only 1.5 works with the APIv2 code that protoc-gen-go generates.
PACKAGES=(
    golang-go
    golang-google-grpc-dev
    golang-github-golang-protobuf-1-5-dev
    golang-google-protobuf-dev
    protobuf-compiler
    protoc-gen-go
    protoc-gen-go-grpc
    openssl
    nghttp2-proxy # nghttpx: the TLS-terminating sidecar baseline of benchmarks/server.py
    pebble        # a real ACME server (Let's Encrypt's test CA) for tests/acme
)
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

missing=()
for package in "${PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm) # Debian's Node.js 18 is new enough for @grpc/grpc-js
fi
if [ ${#missing[@]} -eq 0 ]; then
    say "apt: all ${#PACKAGES[@]} Debian packages already installed"
else
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "apt: need root (or sudo) to install: ${missing[*]}"
        SUDO=(sudo)
    fi
    step=$SECONDS
    say "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    mkdir -p "$BUILD"
    "${SUDO[@]}" apt-get update -qq >"$BUILD/apt.log" 2>&1 ||
        die "apt: 'apt-get update' failed; cannot install ${missing[*]} (log: $BUILD/apt.log)"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >>"$BUILD/apt.log" 2>&1 ||
        die "apt: 'apt-get install ${missing[*]}' failed (log: $BUILD/apt.log)"
    say "apt: done in $((SECONDS - step)) s"
fi
for tool in go protoc protoc-gen-go protoc-gen-go-grpc node npm openssl; do
    command -v "$tool" >/dev/null 2>&1 || die "apt: '$tool' is still not on PATH after installing"
done
# Debian installs nghttpx in /usr/sbin, which is not on every user's PATH.
[ -x /usr/sbin/nghttpx ] || command -v nghttpx >/dev/null 2>&1 ||
    die "apt: 'nghttpx' is still missing after installing nghttp2-proxy"

# -- 2. npm dependencies ----------------------------------------------------------------------
NODE_DIR="$HERE/node"
if [ -f "$NODE_DIR/node_modules/.package-lock.json" ] &&
    [ ! "$NODE_DIR/package-lock.json" -nt "$NODE_DIR/node_modules/.package-lock.json" ]; then
    say "npm: node_modules up to date ($(node --version))"
else
    step=$SECONDS
    say "npm: npm ci in interop/node ($(node --version), npm $(npm --version 2>/dev/null))"
    # --ignore-scripts: nothing here needs an install script (protobufjs's only prints a notice).
    mkdir -p "$BUILD"
    (cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund) >"$BUILD/npm.log" 2>&1 ||
        die "npm: 'npm ci' failed in $NODE_DIR (log: $BUILD/npm.log)"
    say "npm: done in $((SECONDS - step)) s"
fi

# -- 3. generated Go code ---------------------------------------------------------------------
GOPATH_DIR="$BUILD/gopath"
PKG_ROOT="$GOPATH_DIR/src/grpcsec.dev/interop"
mkdir -p "$PKG_ROOT/helloworld" "$BUILD/bin"
protoc -I "$HERE/proto" \
    --go_out="$PKG_ROOT/helloworld" --go_opt=paths=source_relative \
    --go-grpc_out="$PKG_ROOT/helloworld" --go-grpc_opt=paths=source_relative \
    "$HERE/proto/helloworld.proto" || die "protoc: cannot generate Go code from helloworld.proto"
say "protoc: generated $(cd "$PKG_ROOT/helloworld" && echo *.go) ($(protoc --version))"

# -- 4. Go binaries (GOPATH mode, offline) ----------------------------------------------------
export GO111MODULE=off
export GOPATH="$GOPATH_DIR:/usr/share/gocode"
export GOCACHE="$BUILD/gocache"
export GOPROXY=off GOFLAGS="" GOTOOLCHAIN=local CGO_ENABLED=0
for program in client server crlcheck load; do
    binary="greeter-$program"
    case $program in crlcheck) binary=crlcheck ;; load) binary=grpc-load ;; esac
    rm -rf "${PKG_ROOT:?}/$program"
    cp -R "$HERE/go/$program" "$PKG_ROOT/$program"
    step=$SECONDS
    go build -o "$BUILD/bin/$binary" "grpcsec.dev/interop/$program" ||
        die "go: cannot build the $program (GOPATH=$GOPATH)"
    say "go: built interop/build/bin/$binary in $((SECONDS - step)) s ($(go version | cut -d' ' -f3))"
done

say "ready in $((SECONDS - START)) s"
