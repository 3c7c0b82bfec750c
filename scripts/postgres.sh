#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the scale-out tests and benchmark.
#   scripts/postgres.sh start DIR [PORT]   initdb + pg_ctl start; prints the base URL
#   scripts/postgres.sh stop DIR           pg_ctl stop (fast)
# Debian's postgresql package provides the binaries (apt-get install postgresql). PostgreSQL
# refuses to run as root, so as root the server runs as the `postgres` user (created if
# missing). Authentication is `trust` on loopback: a test server, never a production one.
set -euo pipefail
cmd=${1:?usage: postgres.sh start DIR [PORT] | stop DIR}
dir=${2:?give the server directory}
port=${3:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ]; then
  echo "postgres.sh: PostgreSQL is not installed; apt-get install postgresql" >&2
  exit 2
fi
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
start)
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir "$dir" --shell /usr/sbin/nologin postgres
  fi
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  chmod 700 "$dir"
  if ! as_owner test -w "$dir"; then
    echo "postgres.sh: the server's user cannot reach $dir; make its parent directories traversable (chmod o+x)" >&2
    exit 2
  fi
  as_owner "$bin/initdb" -D "$dir/data" -U pie --auth=trust -E UTF8 --no-instructions >"$dir/initdb.log"
  # Sockets in DIR (not /var/run/postgresql, which may not exist or be writable).
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null
  echo "postgresql+psycopg://pie@127.0.0.1:$port"
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  fi
  ;;
*)
  echo "postgres.sh: unknown command $cmd (start or stop)" >&2
  exit 2
  ;;
esac
