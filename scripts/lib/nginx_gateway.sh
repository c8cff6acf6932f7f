#!/usr/bin/env bash
# Starts nginx on loopback as a limit_req gateway (leaky bucket per client
# key, no burst, 429 on rejection) in front of UPSTREAM, and prints its base
# URL. Usage: nginx_gateway.sh DIR RATE UPSTREAM_URL [RETRY_AFTER [STATUS]]
#   RATE         requests per second per key; 0: no limit (a logging proxy)
#   RETRY_AFTER  seconds sent as Retry-After on the 429s (the common operator
#                setting, `add_header Retry-After 1 always`, limited to 429s
#                here); none when absent or 0.
#   STATUS       the rejection's status: 429 (default), or 503, nginx's own
#                default when limit_req_status is not set.
# Every request is logged to DIR/access.log as `$msec $request_time $status
# $arg_image_url` (end time, duration, status, image; scripts/lib/pacing_figures.py
# reads the first three, scripts/shared_limit.sh the image too).
# NGINX_PRIORITY=-10 (environment) runs nginx's worker at that nice value
# (worker_priority; default 0): a gateway that does not wait for a core, as on a
# host of its own (docs/measurements.md: it did not move the 8-process row). A
# value below 0 needs root: otherwise nginx says so in DIR/error.log and runs at 0.
# Stop: kill $(cat DIR/nginx.pid). Installs nginx with apt-get when it is missing.
set -euo pipefail
dir=$1 rate=$2 upstream=${3#http://} retry_after=${4:-0} status=${5:-429}
if ! command -v nginx >/dev/null; then
  apt-get update -qq >&2 && apt-get install -y -qq nginx-light >&2
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$dir/tmp"
: > "$dir/access.log"
if [ "$retry_after" != 0 ]; then
  # An empty value adds no header: only the 429s carry it.
  retry_map="map \$status \$retry_after { $status $retry_after; default \"\"; }"
  retry_header="add_header Retry-After \$retry_after always;"
else
  retry_map="" retry_header=""
fi
limit=""
[ "$rate" != 0 ] && limit="limit_req zone=perkey;"
cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
worker_priority ${NGINX_PRIORITY:-0};
user root;
pid $dir/nginx.pid;
error_log $dir/error.log error;
events { worker_connections 8192; }
http {
  log_format pacing '\$msec \$request_time \$status \$arg_image_url';
  access_log $dir/access.log pacing;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  limit_req_zone \$arg_client_key zone=perkey:1m rate=$((rate > 0 ? rate : 1))r/s;
  limit_req_status $status;
  limit_req_log_level warn;
  $retry_map
  upstream mock { server $upstream; keepalive 1024; }
  server {
    listen 127.0.0.1:$port;
    location / {
      $limit
      $retry_header
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
nginx -c "$dir/nginx.conf" -p "$dir" >&2
for _ in $(seq 50); do
  # Connect without sending a byte, so nothing lands in the access log.
  (: < "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo "http://127.0.0.1:$port"
