#!/usr/bin/env bash
# Starts nginx on loopback serving one canned Restb.ai JSON reply (HTTP 200,
# keep-alive) for every request, and prints its base URL: a gateway that
# costs next to nothing, to measure a client's own cost per request.
# Usage: nginx_canned.sh DIR   (stop: kill $(cat DIR/nginx.pid))
# Installs nginx with apt-get when it is missing.
set -euo pipefail
dir=$1
if ! command -v nginx >/dev/null; then
  apt-get update -qq >&2 && apt-get install -y -qq nginx-light >&2
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$dir/tmp"
cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $dir/tmp;
  server {
    listen 127.0.0.1:$port;
    location / {
      default_type application/json;
      return 200 '{"response":{"solutions":{"re_logo":{"detections":[]}}},"error":"false","correlation_id":"canned"}';
    }
  }
}
CONF
nginx -c "$dir/nginx.conf" -p "$dir" >&2
for _ in $(seq 50); do
  (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo "http://127.0.0.1:$port"
