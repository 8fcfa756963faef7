#!/usr/bin/env bash
# A PostgreSQL high-availability cluster on loopback, for the HA e2e suite and for trying failover by hand
# (docs/operations.md): etcd + 3 Patroni members (PostgreSQL 15) + HAProxy (primary and replica ports,
# routed by Patroni's /primary and /replica checks) + PgBouncer (transaction pooling, otherwise its
# defaults) in front of HAProxy's primary port.
#
#   scripts/ha-cluster.sh up [--sync]     start from empty directories; returns once HAProxy routes
#   scripts/ha-cluster.sh down            stop everything and delete the data
#   scripts/ha-cluster.sh status          patronictl list
#   scripts/ha-cluster.sh sync on|off     Patroni's synchronous_mode (a commit waits for one standby)
#   scripts/ha-cluster.sh patronictl ARGS patronictl with this cluster's configuration
#   scripts/ha-cluster.sh check           exits 0 when the packages are installed, else says which are missing
#
# Ports (HA_PORT_BASE, default 15000): +0 etcd client, +1 etcd peer, +10..12 Patroni REST,
# +20..22 PostgreSQL, +30 HAProxy primary, +31 HAProxy replicas, +32 HAProxy stats, +40 PgBouncer.
# Data and logs under HA_DIR (default /tmp/ha-cluster). Authentication is `trust` on 127.0.0.1: a test
# cluster, not a production template (docs/operations.md says what to change).
set -euo pipefail

BASE="${HA_PORT_BASE:-15000}"
DIR="${HA_DIR:-/tmp/ha-cluster}"
PG_BIN="${HA_PG_BIN:-/usr/lib/postgresql/15/bin}"
SCOPE=ha-e2e
ETCD_PORT=$((BASE + 0))
ETCD_PEER=$((BASE + 1))
HAPROXY_PRIMARY=$((BASE + 30))
HAPROXY_REPLICAS=$((BASE + 31))
HAPROXY_STATS=$((BASE + 32))
PGBOUNCER_PORT=$((BASE + 40))
MEMBERS=(1 2 3)
rest_port() { echo $((BASE + 9 + $1)); }
pg_port() { echo $((BASE + 19 + $1)); }

# PostgreSQL and PgBouncer refuse to run as root: as root, everything runs as the `postgres` user.
if [ "$(id -u)" = 0 ]; then
  RUN_AS=(runuser -u postgres --)
else
  RUN_AS=()
fi
as_owner() { "${RUN_AS[@]}" "$@"; }

missing() {
  local need=()
  command -v etcd >/dev/null || need+=(etcd-server)
  command -v patroni >/dev/null || need+=(patroni)
  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
  command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
  [ -x "$PG_BIN/postgres" ] || need+=(postgresql-15)
  command -v curl >/dev/null || need+=(curl)
  echo "${need[*]}"
}
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
PGBOUNCER="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"

patroni_config() {
  local n=$1
  cat <<EOF
scope: $SCOPE
name: pg$n
restapi:
  listen: 127.0.0.1:$(rest_port "$n")
  connect_address: 127.0.0.1:$(rest_port "$n")
etcd3:
  host: 127.0.0.1:$ETCD_PORT
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    # A primary whose postgres died is not restarted in place (default 300 s of trying): the leader
    # lock is released at once and a standby is promoted.
    primary_start_timeout: 0
    synchronous_mode: false
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: 'on'
        wal_log_hints: 'on'
        max_wal_senders: 10
        max_replication_slots: 10
        max_connections: 200
        wal_keep_size: 128MB
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
  pg_hba:
    - host replication all 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
    - local all all trust
postgresql:
  listen: 127.0.0.1:$(pg_port "$n")
  connect_address: 127.0.0.1:$(pg_port "$n")
  data_dir: $DIR/pg$n
  bin_dir: $PG_BIN
  pgpass: $DIR/pgpass$n
  authentication:
    superuser:
      username: postgres
      password: postgres
    replication:
      username: postgres
      password: postgres
  parameters:
    unix_socket_directories: '$DIR'
  basebackup:
    - checkpoint: fast
EOF
}

haproxy_config() {
  cat <<EOF
global
  maxconn 1000
defaults
  mode tcp
  log global
  # Fail fast while no member is the primary: a refused or queued connection is closed within ~1 s
  # (the app answers 503 and its next attempt reaches the new primary), not held for retries.
  retries 1
  timeout connect 1s
  timeout queue 1s
  timeout client 30m
  timeout server 30m
  timeout check 1s
listen stats
  mode http
  bind 127.0.0.1:$HAPROXY_STATS
  stats enable
  stats uri /
listen primary
  bind 127.0.0.1:$HAPROXY_PRIMARY
  option httpchk GET /primary
  http-check expect status 200
  # A member that stops being the primary has its connections cut, so no client keeps writing to it.
  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
EOF
  for n in "${MEMBERS[@]}"; do echo "  server pg$n 127.0.0.1:$(pg_port "$n") maxconn 200 check port $(rest_port "$n")"; done
  cat <<EOF
listen replicas
  bind 127.0.0.1:$HAPROXY_REPLICAS
  balance roundrobin
  option httpchk GET /replica
  http-check expect status 200
  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
EOF
  for n in "${MEMBERS[@]}"; do echo "  server pg$n 127.0.0.1:$(pg_port "$n") maxconn 200 check port $(rest_port "$n")"; done
}

pgbouncer_config() {
  # Everything not set here is PgBouncer's default; in particular no ignore_startup_parameters.
  cat <<EOF
[databases]
* = host=127.0.0.1 port=$HAPROXY_PRIMARY
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
pool_mode = transaction
admin_users = postgres
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
EOF
}

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local seconds=$1
  shift
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

# HAProxy's view: one primary UP, and every other member UP as a replica ($1 = replicas expected).
haproxy_routes() {
  local csv
  csv="$(curl -fsS "http://127.0.0.1:$HAPROXY_STATS/;csv")" || return 1
  [ "$(grep -c '^primary,pg[0-9],.*,UP,' <<<"$csv")" = 1 ] || return 1
  [ "$(grep -c '^replicas,pg[0-9],.*,UP,' <<<"$csv")" -ge "$1" ] || return 1
}

psql_at() { "$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
  local sync=false
  [ "${1:-}" = "--sync" ] && sync=true
  local need
  need="$(missing)"
  [ -z "$need" ] || { echo "ha-cluster: missing Debian packages: $need" >&2; exit 2; }
  if pid_alive "$DIR/etcd.pid"; then echo "ha-cluster: already running in $DIR (scripts/ha-cluster.sh down first)" >&2; exit 1; fi
  rm -rf "$DIR"
  mkdir -p "$DIR"
  local started=$SECONDS

  echo '"postgres" ""' >"$DIR/userlist.txt"
  for n in "${MEMBERS[@]}"; do patroni_config "$n" >"$DIR/pg$n.yml"; done
  sed -i "s/synchronous_mode: false/synchronous_mode: $sync/" "$DIR"/pg*.yml
  haproxy_config >"$DIR/haproxy.cfg"
  pgbouncer_config >"$DIR/pgbouncer.ini"
  [ ${#RUN_AS[@]} -eq 0 ] || chown -R postgres:postgres "$DIR"
  chmod 700 "$DIR"

  spawn etcd etcd --name ha-etcd --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "ha-etcd=http://127.0.0.1:$ETCD_PEER"
  wait_for 20 curl -fsS "http://127.0.0.1:$ETCD_PORT/health" || { tail -20 "$DIR/etcd.log" >&2; exit 1; }

  # The first member bootstraps the cluster; the others then copy it (pg_basebackup, fast checkpoint).
  start_member 1
  wait_for 60 psql_at "$(pg_port 1)" 'SELECT 1' || { tail -30 "$DIR/patroni1.log" >&2; exit 1; }
  start_member 2
  start_member 3

  "$HAPROXY" -D -f "$DIR/haproxy.cfg" -p "$DIR/haproxy.pid"
  as_owner "$PGBOUNCER" -d -q "$DIR/pgbouncer.ini"

  # HAProxy's first health checks must have found the primary and both replicas before its ports are used.
  wait_for 90 haproxy_routes 2 || { echo "ha-cluster: HAProxy did not see 1 primary + 2 replicas" >&2; status >&2; exit 1; }
  wait_for 20 psql_at "$PGBOUNCER_PORT" 'SELECT 1' || { tail -20 "$DIR/pgbouncer.log" >&2; exit 1; }
  echo "ha-cluster: up in $((SECONDS - started)) s (synchronous_mode: $sync)"
  echo "  primary   postgres://postgres@127.0.0.1:$HAPROXY_PRIMARY/postgres   (HAProxy → the leader)"
  echo "  replicas  postgres://postgres@127.0.0.1:$HAPROXY_REPLICAS/postgres   (HAProxy → the standbys)"
  echo "  pgbouncer postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/postgres   (transaction pooling → primary)"
  echo "  stats     http://127.0.0.1:$HAPROXY_STATS/"
}

start_member() { spawn "patroni$1" patroni "$DIR/pg$1.yml"; }

# Runs a daemon in the background as the data's owner, its log in $DIR/$1.log and its own PID (not a
# wrapper's: runuser forks) in $DIR/$1.pid.
spawn() {
  local name=$1
  shift
  as_owner sh -c 'echo $$ >"$0"; exec "$@"' "$DIR/$name.pid" "$@" >"$DIR/$name.log" 2>&1 &
  wait_for 10 test -s "$DIR/$name.pid"
}

down() {
  [ -d "$DIR" ] || return 0
  for f in pgbouncer haproxy; do
    pid_alive "$DIR/$f.pid" && kill "$(cat "$DIR/$f.pid")" 2>/dev/null || true
  done
  for n in "${MEMBERS[@]}"; do
    pid_alive "$DIR/patroni$n.pid" && kill "$(cat "$DIR/patroni$n.pid")" 2>/dev/null || true
  done
  for n in "${MEMBERS[@]}"; do
    wait_for 20 bash -c "! kill -0 \$(cat '$DIR/patroni$n.pid' 2>/dev/null) 2>/dev/null" || kill -9 "$(cat "$DIR/patroni$n.pid")" 2>/dev/null || true
    # A postgres Patroni left behind (Patroni killed hard) is stopped too.
    if [ -f "$DIR/pg$n/postmaster.pid" ]; then
      as_owner "$PG_BIN/pg_ctl" -D "$DIR/pg$n" -m immediate stop >/dev/null 2>&1 || true
    fi
  done
  pid_alive "$DIR/etcd.pid" && kill "$(cat "$DIR/etcd.pid")" 2>/dev/null || true
  wait_for 10 bash -c "! kill -0 \$(cat '$DIR/etcd.pid' 2>/dev/null) 2>/dev/null" || true
  rm -rf "$DIR" 2>/dev/null || { sleep 1; rm -rf "$DIR"; }
}

ctl() { patronictl -c "$DIR/pg1.yml" "$@"; }

status() { ctl list; }

sync() {
  case "${1:-}" in
    on) ctl edit-config --force -s synchronous_mode=true >/dev/null ;;
    off) ctl edit-config --force -s synchronous_mode=false >/dev/null ;;
    *) echo "usage: $0 sync on|off" >&2; exit 64 ;;
  esac
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  sync) shift; sync "$@" ;;
  patronictl) shift; ctl "$@" ;;
  check)
    need="$(missing)"
    [ -z "$need" ] || { echo "missing Debian packages: $need (apt-get install etcd-server patroni haproxy pgbouncer postgresql-15 curl)"; exit 2; }
    ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 64 ;;
esac
