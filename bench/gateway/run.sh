#!/usr/bin/env bash
# End-to-end proxy benchmark: wrk on loopback against (a) the model server directly, a Go TCP relay
# (the floor for any Go process in the path), (b) a bare
# httputil.ReverseProxy, (c) pipewarden gateway with every detector on, (d) nginx as a reverse
# proxy, all with the same 6 KB KServe v2 body. Run from the repository root:
#
#   bash bench/gateway/run.sh            # DURATION=10s CONNS=32 ROUNDS=3 to change the load
#
# Installs wrk and nginx from Debian if they are missing. Prints one Markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-32}"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk nginx >/dev/null
fi

go build -o "$WORK/pipewarden" ./cmd/pipewarden
go build -o "$WORK/helper" ./bench/gateway
"$WORK/helper" body -out "$WORK/body.json" -baseline "$WORK/baseline.json" >&2

UP=18080 BARE=18081 GW=18082 NGX=18083 ADMIN=18084 GWOFF=18085 ADMINOFF=18086 RELAY=18087
"$WORK/helper" upstream -listen 127.0.0.1:$UP &
"$WORK/helper" bare -listen 127.0.0.1:$BARE -upstream http://127.0.0.1:$UP &
"$WORK/helper" relay -listen 127.0.0.1:$RELAY -upstream http://127.0.0.1:$UP &
# Every detector runs; escalation is off so that wrk's one client, which repeats one body, is
# never throttled and every request is proxied.
cat > "$WORK/gateway.yaml" <<YAML
listen: 127.0.0.1:$GW
admin_listen: 127.0.0.1:$ADMIN
data_dir: $WORK/gw
escalation: {off: true}
routes:
  - name: bench
    upstream: http://127.0.0.1:$UP
    protocol: kserve-v2
    features: 13
    baseline: $WORK/baseline.json
YAML
"$WORK/pipewarden" gateway --config "$WORK/gateway.yaml" >"$WORK/gw.out" 2>"$WORK/gw.err" &
# The same gateway with every detector off: the cost of the inline path alone.
sed -e "s/:$GW\$/:$GWOFF/; s/:$ADMIN\$/:$ADMINOFF/; s#/gw\$#/gwoff#" \
  -e 's/^escalation: {off: true}$/escalation: {off: true}\ndetectors: {disable: [prada, blacklight, drift, pattern, endpoint]}/' \
  "$WORK/gateway.yaml" > "$WORK/gateway-off.yaml"
"$WORK/pipewarden" gateway --config "$WORK/gateway-off.yaml" >"$WORK/gwoff.out" 2>"$WORK/gwoff.err" &
cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx-body;
  proxy_temp_path $WORK/nginx-proxy;
  upstream model { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX;
    client_body_buffer_size 16k;
    location / { proxy_pass http://model; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
sleep 2

cat > "$WORK/post.lua" <<LUA
local f = io.open("$WORK/body.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

# One round measures every target once, latency then load; rounds are interleaved so that the
# machine's other load falls on all targets alike, and the table keeps each target's best round
# (lowest p50, highest requests/s) and its median requests/s.
measure() { # name url → appends "p50us p99us rps loadp50us non2xx" to $WORK/<name>
  local lat load
  lat="$(wrk -t1 -c1 -d"$DURATION" --latency -s "$WORK/post.lua" "$2/v2/models/bench/infer")"
  load="$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/post.lua" "$2/v2/models/bench/infer")"
  echo "$(us "$(awk '/^ +50%/{print $2}' <<<"$lat")") $(us "$(awk '/^ +99%/{print $2}' <<<"$lat")") \
$(awk '/^Requests\/sec/{print $2}' <<<"$load") $(us "$(awk '/^ +50%/{print $2}' <<<"$load")") \
$(awk '/Non-2xx/{print $5}' <<<"$load" | grep . || echo 0)" >>"$WORK/res-$1"
}
us() { # wrk duration (12.3us, 1.2ms, 2s) → microseconds
  awk -v d="$1" 'BEGIN { v = d + 0; if (d ~ /us$/) f = 1; else if (d ~ /ms$/) f = 1000; else if (d ~ /s$/) f = 1000000; else f = 1; printf "%.0f", v * f }'
}
TARGETS=(direct relay bare gwoff gwon nginx)
declare -A URL=([direct]="http://127.0.0.1:$UP" [relay]="http://127.0.0.1:$RELAY" [bare]="http://127.0.0.1:$BARE" [gwoff]="http://127.0.0.1:$GWOFF" \
  [gwon]="http://127.0.0.1:$GW" [nginx]="http://127.0.0.1:$NGX")
declare -A NAME=([direct]="direct (model server)" [relay]="Go TCP relay (no HTTP)" [bare]="bare httputil.ReverseProxy" \
  [gwoff]="pipewarden gateway, detectors off" [gwon]="pipewarden gateway, all detectors on" [nginx]="nginx, 1 worker")
ROUNDS="${ROUNDS:-3}"
for r in $(seq 1 "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do measure "$t" "${URL[$t]}"; done
  echo "round $r done" >&2
done

echo "Machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; \
wrk $DURATION per run, $ROUNDS interleaved rounds; latency with 1 connection, throughput with $CONNS connections; 6 KB KServe v2 body."
echo
echo "| target | p50 latency, 1 conn (best) | p99, same run | requests/s, $CONNS conns (best) | requests/s (median) | p50 at $CONNS conns (best) | non-2xx |"
echo "|---|---|---|---|---|---|---|"
for t in "${TARGETS[@]}"; do
  best_lat="$(sort -n -k1 "$WORK/res-$t" | head -1)"
  best_rps="$(sort -n -k3 "$WORK/res-$t" | tail -1 | awk '{print $3}')"
  med_rps="$(sort -n -k3 "$WORK/res-$t" | awk '{a[NR]=$3} END {print a[int((NR+1)/2)]}')"
  best_lp="$(sort -n -k4 "$WORK/res-$t" | head -1 | awk '{print $4}')"
  non2xx="$(awk '{s+=$5} END {print s}' "$WORK/res-$t")"
  echo "| ${NAME[$t]} | $(awk '{print $1}' <<<"$best_lat") µs | $(awk '{print $2}' <<<"$best_lat") µs | $best_rps | $med_rps | $best_lp µs | $non2xx |"
done
echo
TOKEN="$(cat "$WORK/gw/gateway-admin.token")"
curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN/v1/gateway/clients" \
  | sed -n 's/.*"gateway":\({[^}]*}\).*/gateway stats: \1/p'
