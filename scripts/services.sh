#!/usr/bin/env bash
# Local stand-ins for lbx's distributed profile, all on 127.0.0.1:
#   Postgres (Dagster storage + DuckLake catalogue), Redis (Celery broker), moto (S3).
#
#   scripts/services.sh install           apt-get postgresql and redis-server if missing
#   scripts/services.sh start DIR         fresh, empty services with all state under DIR; prints
#                                         `export NAME=value` lines on stdout, progress on stderr:
#                                         env="$(scripts/services.sh start DIR)" && eval "$env"
#                                         (a bare eval "$(...)" would hide a failed start)
#   scripts/services.sh stop DIR          stops them; never fails when something is already down
#
# Ports: LBX_PG_PORT (55432), LBX_REDIS_PORT (56379), LBX_S3_PORT (55000).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_PORT="${LBX_PG_PORT:-55432}"
REDIS_PORT="${LBX_REDIS_PORT:-56379}"
S3_PORT="${LBX_S3_PORT:-55000}"
HOST=127.0.0.1
MOTO="$REPO_ROOT/.venv/bin/moto_server"

log() { echo "services: $*" >&2; }
die() { log "error: $*"; exit 1; }

pg_bin() {
    local d
    d="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    [[ -n "$d" && -x "$d/initdb" ]] || die "no Postgres server found; run: $0 install"
    echo "$d"
}

# Postgres refuses to run as root: as root, run its tools as the postgres system user
as_pg() {
    if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

wait_for() { # wait_for WHAT SECONDS CMD...
    local what="$1" secs="$2" i
    shift 2
    for ((i = 0; i < secs * 10; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    die "$what did not come up within ${secs}s"
}

# a zombie (exited, not yet reaped) has an empty cmdline, so it does not count as running
is_running() { # is_running PID PATTERN
    [[ "$1" =~ ^[0-9]+$ ]] && tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -q -- "$2"
}

# kill the pid in FILE only if it still is the expected program (pids get reused)
kill_pidfile() { # kill_pidfile FILE PATTERN
    local file="$1" pat="$2" pid i
    [[ -f "$file" ]] || return 0
    pid="$(cat "$file" 2>/dev/null || true)"
    if is_running "$pid" "$pat"; then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            is_running "$pid" "$pat" || break
            sleep 0.1
        done
        if is_running "$pid" "$pat"; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$file"
}

cmd_install() {
    local sudo=() missing=()
    [[ $EUID -eq 0 ]] || sudo=(sudo)
    ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
    # where systemd runs, Debian also starts system-wide instances on the standard ports; ours
    # use other ports and do not interfere
    [[ -x "$MOTO" ]] || die "$MOTO is missing; run: make install"
    log "installed: postgres $(basename "$(dirname "$(pg_bin)")"), redis $(redis-server --version | sed -E 's/.* v=([^ ]+).*/\1/'), moto"
}

cmd_stop() {
    local dir="$1" bin
    [[ -d "$dir" ]] || return 0
    dir="$(cd "$dir" && pwd)"
    if [[ -f "$dir/pg/postmaster.pid" ]]; then
        bin="$(pg_bin)"
        log "stopping postgres"
        as_pg "$bin/pg_ctl" stop -D "$dir/pg" -m fast -w -t 30 >/dev/null 2>&1 || true
    fi
    if [[ -f "$dir/redis.pid" ]]; then
        log "stopping redis"
        kill_pidfile "$dir/redis.pid" redis-server
    fi
    if [[ -f "$dir/moto.pid" ]]; then
        log "stopping moto"
        kill_pidfile "$dir/moto.pid" moto_server
    fi
}

start_postgres() {
    local dir="$1" bin d
    bin="$(pg_bin)"
    rm -rf "$dir/pg"
    mkdir -p "$dir/pg"
    if [[ $EUID -eq 0 ]]; then
        chown postgres:postgres "$dir/pg"
        # the postgres user must be able to reach DIR/pg: give search (x) permission where it lacks it
        d="$dir"
        while [[ "$d" != / ]]; do
            runuser -u postgres -- test -x "$d" || chmod o+x "$d"
            d="$(dirname "$d")"
        done
    fi
    chmod 700 "$dir/pg"
    as_pg "$bin/initdb" -D "$dir/pg" --no-sync -U postgres -E UTF8 --locale=C.UTF-8 --auth=trust >/dev/null
    # TCP only (no unix socket: paths under DIR can exceed the 107-byte limit); throwaway data,
    # so durability is off for speed
    cat >>"$dir/pg/postgresql.conf" <<EOF
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
    # the superuser is trusted; lbx must give its password, so that a wrong DSN fails here too
    cat >"$dir/pg/pg_hba.conf" <<EOF
host all postgres $HOST/32 trust
host all all $HOST/32 scram-sha-256
EOF
    as_pg "$bin/pg_ctl" start -D "$dir/pg" -l "$dir/pg/postgres.log" -w -t 30 >/dev/null ||
        die "postgres did not start; see $dir/pg/postgres.log"
    wait_for postgres 30 "$bin/pg_isready" -q -h "$HOST" -p "$PG_PORT"
    "$bin/psql" -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U postgres -d postgres >/dev/null <<'EOF'
CREATE ROLE lbx LOGIN PASSWORD 'lbx';
CREATE DATABASE dagster OWNER lbx;
CREATE DATABASE lbx_catalog OWNER lbx;
EOF
}

start_redis() {
    local dir="$1"
    redis-server --bind "$HOST" --port "$REDIS_PORT" --daemonize yes \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
        --save '' --appendonly no >/dev/null || die "redis did not start; see $dir/redis.log"
    wait_for redis 10 sh -c "redis-cli -h $HOST -p $REDIS_PORT ping | grep -q PONG"
}

launch_moto() {
    local dir="$1"
    # setsid + all fds redirected: it must outlive us and not hold open the stdout that
    # `eval "$(... start DIR)"` reads to its end
    setsid "$MOTO" -H "$HOST" -p "$S3_PORT" </dev/null >"$dir/moto.log" 2>&1 &
    echo $! >"$dir/moto.pid"
}

wait_moto() {
    wait_for moto 30 curl -sf -o /dev/null "http://$HOST:$S3_PORT/moto-api/"
    curl -sf -o /dev/null -X PUT "http://$HOST:$S3_PORT/lbx" || die "could not create bucket lbx"
}

cmd_start() {
    local dir="$1" t0=$SECONDS p
    command -v redis-server >/dev/null 2>&1 || die "redis-server is missing; run: $0 install"
    [[ -x "$MOTO" ]] || die "$MOTO is missing; run: make install"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    cmd_stop "$dir"
    # a failed start leaves nothing running (expanded now: locals are gone when the trap runs)
    # shellcheck disable=SC2064
    trap "cmd_stop $(printf %q "$dir")" EXIT
    for p in "$PG_PORT" "$REDIS_PORT" "$S3_PORT"; do
        ! port_busy "$p" || die "port $p on $HOST is in use by something else"
    done
    # moto takes a second or two to import: let it boot while Postgres initialises
    log "starting moto (S3) on $HOST:$S3_PORT"
    launch_moto "$dir"
    log "starting postgres on $HOST:$PG_PORT"
    start_postgres "$dir"
    log "starting redis on $HOST:$REDIS_PORT"
    start_redis "$dir"
    wait_moto
    trap - EXIT
    log "all up in $((SECONDS - t0))s; state in $dir"
    cat <<EOF
export LBX_PG_DSN='host=$HOST port=$PG_PORT user=lbx password=lbx dbname=lbx_catalog'
export LBX_DAGSTER_PG_HOST=$HOST
export LBX_DAGSTER_PG_PORT=$PG_PORT
export LBX_DAGSTER_PG_USER=lbx
export LBX_DAGSTER_PG_PASSWORD=lbx
export LBX_DAGSTER_PG_DB=dagster
export LBX_REDIS_URL=redis://$HOST:$REDIS_PORT/0
export LBX_S3_ENDPOINT=$HOST:$S3_PORT
export LBX_S3_BUCKET=lbx
export AWS_ACCESS_KEY_ID=lbx-test
export AWS_SECRET_ACCESS_KEY=lbx-test-secret
EOF
}

usage() { echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2; }

case "${1:-}" in
install) cmd_install ;;
start) [[ $# -eq 2 ]] || usage; cmd_start "$2" ;;
stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
*) usage ;;
esac
