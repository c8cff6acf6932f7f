#!/usr/bin/env bash
# Starts nginx on loopback as a limit_req gateway (leaky bucket per client
# key, no burst, 429 on rejection) in front of UPSTREAM, and prints its base
# URL. Usage: nginx_gateway.sh DIR RATE UPSTREAM_URL   (stop: kill $(cat DIR/nginx.pid))
# Installs nginx with apt-get when it is missing.
set -euo pipefail
dir=$1 rate=$2 upstream=${3#http://}
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
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  limit_req_zone \$arg_client_key zone=perkey:1m rate=${rate}r/s;
  limit_req_status 429;
  upstream mock { server $upstream; keepalive 1024; }
  server {
    listen 127.0.0.1:$port;
    location / {
      limit_req zone=perkey;
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
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
