#!/usr/bin/env bash
# Generates a model directory for the manifest-hashing benchmark: a few big files and many small
# ones, SIZE_GIB in all (default 4), deterministic (AES-CTR keystream of a fixed seed), so every
# run hashes the same bytes. Usage: generate.sh DIR [SIZE_GIB]
set -euo pipefail
dir=${1:?usage: generate.sh DIR [SIZE_GIB]}
size_gib=${2:-4}
seed=pipewarden-bench-hash

stream() ( # stream NAME BYTES: deterministic bytes for one file (openssl dies of SIGPIPE)
	set +o pipefail
	openssl enc -aes-256-ctr -pass "pass:$seed-$1" -pbkdf2 -nosalt </dev/zero 2>/dev/null | head -c "$2"
)

mkdir -p "$dir/shards" "$dir/tokenizer"
total=$((size_gib * 1024 * 1024 * 1024))
small_count=512
small_size=$((512 * 1024))                      # 512 small files of 512 KiB = 256 MiB
big_count=3
big_size=$(((total - small_count * small_size) / big_count))
for i in $(seq 1 $big_count); do
	stream "big$i" "$big_size" >"$dir/shards/model-0000$i-of-0000$big_count.safetensors"
done
for i in $(seq 1 $small_count); do
	stream "small$i" "$small_size" >"$dir/tokenizer/part-$i.bin"
done
printf '{"architectures":["Bench"],"hidden_size":4096}\n' >"$dir/config.json"
du -sb "$dir"
