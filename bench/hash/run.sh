#!/usr/bin/env bash
# Manifest hashing throughput of `pipewarden sign` against `openssl dgst -sha256` on the same
# generated model (see generate.sh), files in the page cache. Prints GB/s (1e9 bytes) for:
# openssl on one core, pipewarden on one core, pipewarden on every core (files and shards).
# Usage: bench/hash/run.sh [DIR] [SIZE_GIB]   (DIR defaults to a temporary directory, removed after)
set -euo pipefail
cd "$(dirname "$0")/../.."
size_gib=${2:-4}
dir=${1:-}
cleanup=""
if [ -z "$dir" ]; then
	dir=$(mktemp -d)/model
	cleanup=$(dirname "$dir")
fi
work=$(mktemp -d)
trap 'rm -rf "$work" ${cleanup:+"$cleanup"}' EXIT

[ -d "$dir" ] || bench/hash/generate.sh "$dir" "$size_gib" >/dev/null
go build -o "$work/pipewarden" ./cmd/pipewarden
openssl ecparam -name prime256v1 -genkey -noout -out "$work/key.pem"
bytes=$(find "$dir" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
find "$dir" -type f -exec cat {} + >/dev/null # warm the page cache

best() { # best SECONDS of three runs of a command
	local b=""
	for _ in 1 2 3; do
		local s e t
		s=$(date +%s.%N)
		"$@" >/dev/null
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc -l)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
	done
	echo "$b"
}
gbps() { echo "scale=3; $bytes / $1 / 1000000000" | bc -l; }

files=$(find "$dir" -type f | sort)
t_ossl=$(best taskset -c 0 sh -c "openssl dgst -sha256 $(echo $files | tr '\n' ' ')")
t_pw1=$(best env GOMAXPROCS=1 taskset -c 0 "$work/pipewarden" sign "$dir" --key "$work/key.pem" --signature "$work/m.sig")
t_pwn=$(best "$work/pipewarden" sign "$dir" --key "$work/key.pem" --signature "$work/m.sig")
t_pwns=$(best "$work/pipewarden" sign "$dir" --key "$work/key.pem" --signature "$work/m.sig" --serialization shards --shard-size 268435456)

echo "model: $bytes bytes, $(echo "$files" | wc -l) files; cores: $(nproc); $(lscpu | grep 'Model name' | sed 's/  */ /g')"
printf 'openssl dgst -sha256, 1 core:        %s GB/s\n' "$(gbps "$t_ossl")"
printf 'pipewarden sign, files, 1 core:     %s GB/s (%.2fx openssl)\n' "$(gbps "$t_pw1")" "$(echo "$t_ossl / $t_pw1" | bc -l)"
printf 'pipewarden sign, files, %s cores:    %s GB/s\n' "$(nproc)" "$(gbps "$t_pwn")"
printf 'pipewarden sign, shards 256 MiB, %s cores: %s GB/s\n' "$(nproc)" "$(gbps "$t_pwns")"
