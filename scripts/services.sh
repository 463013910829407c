#!/usr/bin/env bash
# The servers the tests and local development talk to, on loopback only:
#   Kafka 3.9.1 (one KRaft broker+controller, jars from Maven Central, Java 17)
#   PostgreSQL 15, Redis 7 and ClickHouse 18.16 (Debian packages, installed when missing)
#
#   scripts/services.sh up      start whatever is not running; returns once each one answers
#   scripts/services.sh down    stop exactly what `up` started (by pid file) and delete its data
#   scripts/services.sh status  each server up/down with its address; exit 1 if any is down
#   scripts/services.sh env     `export` lines pointing the settings at these servers
#   scripts/services.sh stop postgres|clickhouse|redis    stop one, keeping its data
#   scripts/services.sh start postgres|clickhouse|redis   start it again on that data
#
# Data, logs and pid files live in .services/ (Postgres data in a temp dir recorded there:
# user postgres must be able to reach it, which a checkout under /root does not allow).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.services"
KAFKA_HOME="$ROOT/scripts/kafka"

HOST=127.0.0.1
KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093
KAFKA_TLS_PORT=19094 # TLS with client certificates, from a throwaway CA (kafka_tls_files)
PG_PORT=55432
REDIS_PORT=56379
CH_TCP_PORT=19000
CH_HTTP_PORT=18123
CH_INTERSERVER_PORT=19009

PG_BIN=/usr/lib/postgresql/15/bin
CH_CONFIG=/etc/clickhouse-server/config.xml
APT_PACKAGES=(postgresql-15 redis-server clickhouse-server clickhouse-client)
JAVA_MIN_MAJOR=17

KAFKA_READY_TIMEOUT=120 # s; a cold JVM on a busy 2-core machine can take a while
PG_READY_TIMEOUT=60     # s
REDIS_READY_TIMEOUT=15  # s
CH_READY_TIMEOUT=60     # s
STOP_TIMEOUT=60         # s a server gets to exit after SIGTERM/SIGINT before SIGKILL

log() { printf 'services: %s\n' "$*" >&2; }
die() {
  printf 'services: error: %s\n' "$*" >&2
  exit 1
}

now_ms() {
  local t="${EPOCHREALTIME//[.,]/}"
  echo $((t / 1000))
}
since() { # seconds since a now_ms value, one decimal
  local ms=$(($(now_ms) - $1))
  printf '%d.%ds' $((ms / 1000)) $(((ms % 1000) / 100))
}

# --- processes, by pid file only ----------------------------------------------------------

pid_of() { # the recorded pid of service $1, or nothing
  local file="$STATE/$1.pid"
  [[ -s "$file" ]] && tr -dc '0-9' <"$file"
  return 0
}

# Alive and still the program we started (guards against a recycled pid); zombies count as gone.
pid_alive() { # pid, substring of its command line
  local pid="$1" want="$2" state
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
  [[ -n "$state" && "$state" != "Z" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$want"
}

service_alive() { # name, command-line substring
  pid_alive "$(pid_of "$1")" "$2"
}

port_open() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# Start "$@" detached in its own session, writing its real pid to $1 before exec.
launch() { # pidfile logfile cmd...
  local pidfile="$1" logfile="$2"
  shift 2
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >"$logfile" 2>&1 </dev/null &
  local i
  for i in $(seq 50); do
    [[ -s "$pidfile" ]] && return 0
    sleep 0.02
  done
  die "could not start $1 (no pid written to $pidfile)"
}

stop_service() { # name, command-line substring, signal
  local name="$1" want="$2" sig="$3" pid deadline
  pid="$(pid_of "$name")"
  if pid_alive "$pid" "$want"; then
    local started
    started="$(now_ms)"
    kill -"$sig" "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while pid_alive "$pid" "$want" && ((SECONDS < deadline)); do sleep 0.1; done
    if pid_alive "$pid" "$want"; then
      log "$name (pid $pid) did not exit within ${STOP_TIMEOUT}s of SIG$sig; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      while pid_alive "$pid" "$want" && ((SECONDS < deadline)); do sleep 0.1; done
      pid_alive "$pid" "$want" && die "$name (pid $pid) is still running after SIGKILL"
    fi
    log "$name stopped (pid $pid) in $(since "$started")"
  fi
  rm -f "$STATE/$name.pid"
}

tail_log() { # file: its last lines, for an error message
  if [[ -f "$1" ]]; then
    printf -- '--- last lines of %s ---\n' "$1" >&2
    tail -n 40 "$1" >&2
    printf -- '---\n' >&2
  fi
}

ensure_port_free() { # name port
  if port_open "$2"; then
    die "$1: $HOST:$2 is already taken by a process this script did not start; free the port"
  fi
}

# --- what the servers need ----------------------------------------------------------------

ensure_packages() {
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ $EUID -eq 0 ]] || die "missing Debian packages: ${missing[*]} (install them as root)"
  local started policy_rc=/usr/sbin/policy-rc.d added_policy=0
  started="$(now_ms)"
  log "installing ${missing[*]}"
  # the packages' own services must not start: this script runs its own on other ports
  if [[ ! -e "$policy_rc" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
    chmod +x "$policy_rc"
    added_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local rc=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    </dev/null >"$STATE/apt.log" 2>&1 || rc=$?
  ((added_policy)) && rm -f "$policy_rc"
  ((rc == 0)) || {
    tail_log "$STATE/apt.log"
    die "apt-get could not install ${missing[*]}"
  }
  log "installed ${missing[*]} in $(since "$started")"
}

ensure_java() {
  command -v java >/dev/null || die "java not found: Kafka needs Java $JAVA_MIN_MAJOR or newer"
  local version major
  version="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  major="${version%%.*}"
  [[ "$major" =~ ^[0-9]+$ ]] && ((major >= JAVA_MIN_MAJOR)) ||
    die "java $version found; Kafka needs Java $JAVA_MIN_MAJOR or newer"
}

# The broker's jars, from Maven Central through scripts/kafka/pom.xml; collected again only
# when the pom changes.
ensure_kafka_jars() {
  local lib="$KAFKA_HOME/lib" stamp
  stamp="$(sha256sum "$KAFKA_HOME/pom.xml" | cut -d' ' -f1)"
  [[ -f "$lib/.pom.sha256" && "$(cat "$lib/.pom.sha256")" == "$stamp" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found: it collects the Kafka jars (scripts/kafka/pom.xml)"
  local started
  started="$(now_ms)"
  log "collecting the Kafka jars with mvn"
  rm -rf "$lib"
  mvn -B -q -Dstyle.color=never -f "$KAFKA_HOME/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$lib" </dev/null >"$STATE/mvn.log" 2>&1 || {
    tail_log "$STATE/mvn.log"
    die "mvn could not collect the Kafka jars"
  }
  echo "$stamp" >"$lib/.pom.sha256"
  log "Kafka jars collected in $(since "$started")"
}

# A Python with kafka-python, for the broker's readiness check (a real metadata request).
PYTHON=""
ensure_python() {
  PYTHON="${SERVICES_PYTHON:-$ROOT/.venv/bin/python}"
  if ! "$PYTHON" -c 'import kafka' 2>/dev/null; then
    [[ -n "${SERVICES_PYTHON:-}" ]] && die "SERVICES_PYTHON=$PYTHON cannot import kafka (kafka-python)"
    "$ROOT/scripts/setup.sh" --no-test
    PYTHON="$ROOT/.venv/bin/python"
  fi
}

# --- Kafka ----------------------------------------------------------------------------------

KAFKA_JVM=(-Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -XX:MaxInlineLevel=15 -Djava.awt.headless=true)

# java with the broker's class path and logging; append JVM options, main class, arguments
KAFKA_JAVA=(java "-Dlog4j.configuration=file:$KAFKA_HOME/log4j.properties"
  "-Dkafka.logs.dir=$STATE/kafka" -cp "$KAFKA_HOME/lib/*")

# 0 once the broker answers a metadata request; 2 at once if the broker process is gone.
kafka_ready() { # timeout seconds
  "$PYTHON" - "$HOST:$KAFKA_PORT" "$1" "$(pid_of kafka)" <<'PY'
import logging, os, sys, time

logging.disable(logging.CRITICAL)  # connection refusals while it starts are expected
from kafka.admin import KafkaAdminClient

bootstrap, timeout, pid = sys.argv[1], float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + timeout
while True:
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=5000, client_id="services-ready"
        )
        try:
            admin.list_topics()
        finally:
            admin.close()
        sys.exit(0)
    except Exception as exc:
        if not pid or not os.path.exists(f"/proc/{pid}"):
            print(f"broker process {pid or '?'} is gone", file=sys.stderr)
            sys.exit(2)
        if time.monotonic() > deadline:
            print(f"no metadata answer from {bootstrap}: {exc!r}", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.5)
PY
}

KAFKA_STARTED=""
kafka_launch() { # [keep]: start again on the data of the last run (topics, offsets)
  if service_alive kafka kafka.Kafka; then
    KAFKA_STARTED="" # already running; `kafka_wait` checks it answers
    return 0
  fi
  ensure_port_free kafka "$KAFKA_PORT"
  ensure_port_free kafka-controller "$KAFKA_CONTROLLER_PORT"
  ensure_port_free kafka-tls "$KAFKA_TLS_PORT"
  KAFKA_STARTED="$(now_ms)"
  local dir="$STATE/kafka" cluster_id
  if [[ "${1:-}" == keep && -f "$dir/server.properties" ]]; then
    launch "$STATE/kafka.pid" "$dir/broker.log" \
      "${KAFKA_JAVA[@]}" "${KAFKA_JVM[@]}" kafka.Kafka "$dir/server.properties"
    return 0
  fi
  rm -rf "$dir" "$STATE/kafka.pid"
  mkdir -p "$dir/data"
  kafka_tls_files "$dir/tls"
  sed -e "s#@KAFKA_DATA@#$dir/data#" -e "s#@KAFKA_TLS@#$dir/tls#" \
    "$KAFKA_HOME/server.properties.in" >"$dir/server.properties"
  # a KRaft cluster id is 16 random bytes in URL-safe base64 (22 characters)
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' | cut -c1-22)"
  cluster_id="A${cluster_id:1}" # Kafka refuses ids that start with '-'
  "${KAFKA_JAVA[@]}" -Xmx256m kafka.tools.StorageTool format -t "$cluster_id" \
    -c "$dir/server.properties" >"$dir/format.log" 2>&1 || {
    tail_log "$dir/format.log"
    die "kafka: formatting the KRaft data directory failed"
  }
  launch "$STATE/kafka.pid" "$dir/broker.log" \
    "${KAFKA_JAVA[@]}" "${KAFKA_JVM[@]}" kafka.Kafka "$dir/server.properties"
}

# A CA made for this broker only, its certificate for 127.0.0.1 and one client's: what the
# TLS tests connect with (KAFKA_TLS_DIR). Nothing leaves the machine.
kafka_tls_files() { # directory
  local tls="$1" name
  mkdir -p "$tls"
  command -v openssl >/dev/null || die "openssl not found: it makes the broker's test certificates"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=plugin-server test CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  for name in broker client; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=plugin-server $name" \
      -keyout "$tls/$name.key" -out "$tls/$name.csr" 2>/dev/null
    openssl x509 -req -in "$tls/$name.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
      -CAcreateserial -days 30 -out "$tls/$name.crt" \
      -extfile <(printf "subjectAltName=IP:127.0.0.1") 2>/dev/null
  done
  cat "$tls/broker.key" "$tls/broker.crt" >"$tls/broker.pem"
  chmod 600 "$tls"/*.key "$tls/broker.pem"
}

kafka_wait() {
  local rc=0
  kafka_ready "$KAFKA_READY_TIMEOUT" || rc=$?
  if ((rc != 0)); then
    tail_log "$STATE/kafka/broker.log"
    die "kafka did not answer on $HOST:$KAFKA_PORT (see the broker log above)"
  fi
  if [[ -n "$KAFKA_STARTED" ]]; then
    log "kafka up on $HOST:$KAFKA_PORT in $(since "$KAFKA_STARTED") (pid $(pid_of kafka))"
  else
    log "kafka already up on $HOST:$KAFKA_PORT (pid $(pid_of kafka))"
  fi
}

# --- PostgreSQL -----------------------------------------------------------------------------

as_postgres() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_ready() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t 2; }

pg_up() {
  if service_alive postgres postgres && pg_ready; then
    log "postgres already up on $HOST:$PG_PORT (pid $(pid_of postgres))"
    return 0
  fi
  pg_clean
  ensure_port_free postgres "$PG_PORT"
  local started dir
  started="$(now_ms)"
  dir="$(mktemp -d /tmp/plugin-server-pg.XXXXXX)"
  echo "$dir" >"$STATE/postgres.dir"
  [[ $EUID -eq 0 ]] && chown postgres: "$dir"
  as_postgres "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
    --no-sync >"$dir/initdb.log" 2>&1 || {
    tail_log "$dir/initdb.log"
    die "postgres: initdb failed"
  }
  pg_start "$dir"
  local db
  for db in plugin_server plugin_server_test; do
    "$PG_BIN/psql" -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt \
      -c "CREATE DATABASE $db" >/dev/null
  done
  log "postgres up on $HOST:$PG_PORT in $(since "$started") (pid $(pid_of postgres))"
}

pg_start() { # data dir: start the server on it and record its pid
  local dir="$1"
  as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t "$PG_READY_TIMEOUT" \
    -o "-c listen_addresses=$HOST -p $PG_PORT -k $dir -c fsync=off -c full_page_writes=off \
-c synchronous_commit=off -c max_connections=200" start >/dev/null || {
    tail_log "$dir/postgres.log"
    die "postgres did not start on $HOST:$PG_PORT"
  }
  head -n 1 "$dir/data/postmaster.pid" >"$STATE/postgres.pid"
}

pg_clean() { # the temp data dir of a postgres that is no longer running
  local dir
  dir="$(cat "$STATE/postgres.dir" 2>/dev/null || true)"
  [[ -n "$dir" && "$dir" == /tmp/plugin-server-pg.* ]] && rm -rf "$dir"
  rm -f "$STATE/postgres.dir" "$STATE/postgres.pid"
}

# --- Redis ----------------------------------------------------------------------------------

redis_ready() { [[ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

redis_up() {
  if service_alive redis redis-server && redis_ready; then
    log "redis already up on $HOST:$REDIS_PORT (pid $(pid_of redis))"
    return 0
  fi
  ensure_port_free redis "$REDIS_PORT"
  local started dir="$STATE/redis"
  started="$(now_ms)"
  rm -rf "$dir"
  mkdir -p "$dir"
  launch "$STATE/redis.pid" "$dir/redis.out" redis-server --bind "$HOST" --port "$REDIS_PORT" \
    --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" --daemonize no
  local deadline=$((SECONDS + REDIS_READY_TIMEOUT))
  until redis_ready; do
    if ! service_alive redis redis-server || ((SECONDS > deadline)); then
      tail_log "$dir/redis.log"
      die "redis did not answer on $HOST:$REDIS_PORT"
    fi
    sleep 0.05
  done
  log "redis up on $HOST:$REDIS_PORT in $(since "$started") (pid $(pid_of redis))"
}

# --- ClickHouse -----------------------------------------------------------------------------

ch_ready() {
  clickhouse-client --host "$HOST" --port "$CH_TCP_PORT" --query 'SELECT 1' >/dev/null 2>&1
}

ch_up() {
  if service_alive clickhouse clickhouse && ch_ready; then
    log "clickhouse already up on $HOST:$CH_TCP_PORT (pid $(pid_of clickhouse))"
    return 0
  fi
  ensure_port_free clickhouse "$CH_TCP_PORT"
  ensure_port_free clickhouse-http "$CH_HTTP_PORT"
  local started dir="$STATE/clickhouse"
  started="$(now_ms)"
  [[ "${1:-}" == keep ]] || rm -rf "$dir"
  mkdir -p "$dir/data"
  launch "$STATE/clickhouse.pid" "$dir/stdout.log" /usr/sbin/clickhouse-server \
    --config-file="$CH_CONFIG" -- \
    --listen_host="$HOST" --tcp_port="$CH_TCP_PORT" --http_port="$CH_HTTP_PORT" \
    --interserver_http_port="$CH_INTERSERVER_PORT" \
    --path="$dir/data/" --tmp_path="$dir/data/tmp/" --user_files_path="$dir/data/user_files/" \
    --format_schema_path="$dir/data/format_schemas/" \
    --logger.log="$dir/clickhouse.log" --logger.errorlog="$dir/clickhouse.err.log"
  local deadline=$((SECONDS + CH_READY_TIMEOUT))
  until ch_ready; do
    if ! service_alive clickhouse clickhouse || ((SECONDS > deadline)); then
      tail_log "$dir/stdout.log"
      tail_log "$dir/clickhouse.err.log"
      die "clickhouse did not answer on $HOST:$CH_TCP_PORT"
    fi
    sleep 0.1
  done
  log "clickhouse up on $HOST:$CH_TCP_PORT (http $CH_HTTP_PORT) in $(since "$started")" \
    "(pid $(pid_of clickhouse))"
}

# --- commands -------------------------------------------------------------------------------

cmd_up() {
  mkdir -p "$STATE"
  local started
  started="$(now_ms)"
  ensure_packages
  ensure_java
  ensure_kafka_jars
  ensure_python
  # the broker's JVM warms up while the other servers start
  kafka_launch
  pg_up
  redis_up
  ch_up
  kafka_wait
  log "all up in $(since "$started")"
}

cmd_down() {
  [[ -d "$STATE" ]] || return 0
  stop_service kafka kafka.Kafka TERM
  stop_service clickhouse clickhouse TERM
  stop_service redis redis-server TERM
  stop_service postgres postgres INT # fast shutdown
  pg_clean
  rm -rf "$STATE/kafka" "$STATE/clickhouse" "$STATE/redis" "$STATE/apt.log" "$STATE/mvn.log"
  rmdir "$STATE" 2>/dev/null || true
}

cmd_status() {
  local down=0
  report() { # name alive-and-ready address
    local pid
    pid="$(pid_of "$1")"
    if [[ "$2" == yes ]]; then
      printf '%-11s up    %s (pid %s)\n' "$1" "$3" "$pid"
    else
      printf '%-11s down  %s\n' "$1" "$3"
      down=1
    fi
  }
  local ok
  ok=no
  if service_alive kafka kafka.Kafka; then
    ensure_python
    kafka_ready 5 2>/dev/null && ok=yes
  fi
  report kafka "$ok" "$HOST:$KAFKA_PORT"
  ok=no
  service_alive postgres postgres && pg_ready && ok=yes
  report postgres "$ok" "$HOST:$PG_PORT"
  ok=no
  service_alive redis redis-server && redis_ready && ok=yes
  report redis "$ok" "$HOST:$REDIS_PORT"
  ok=no
  service_alive clickhouse clickhouse && ch_ready && ok=yes
  report clickhouse "$ok" "$HOST:$CH_TCP_PORT (http $CH_HTTP_PORT)"
  return "$down"
}

# stop one server and keep its data, then start it again on that data: the fault tests
cmd_stop() {
  case "${1:-}" in
  postgres) stop_service postgres postgres INT ;;
  clickhouse) stop_service clickhouse clickhouse TERM ;;
  redis) stop_service redis redis-server TERM ;;
  kafka) stop_service kafka kafka.Kafka TERM ;;
  *) die "stop: one of postgres, clickhouse, redis, kafka" ;;
  esac
}

cmd_start() {
  case "${1:-}" in
  postgres)
    service_alive postgres postgres && pg_ready && return 0
    pg_start "$(cat "$STATE/postgres.dir")"
    log "postgres up again on $HOST:$PG_PORT (pid $(pid_of postgres))"
    ;;
  clickhouse) ch_up keep ;;
  redis) redis_up ;;
  kafka)
    ensure_python
    kafka_launch keep
    kafka_wait
    ;;
  *) die "start: one of postgres, clickhouse, redis, kafka" ;;
  esac
}

cmd_env() {
  cat <<EOF
export DATABASE_URL=postgres://postgres@$HOST:$PG_PORT/plugin_server
export KAFKA_TLS_HOSTS=$HOST:$KAFKA_TLS_PORT
export KAFKA_TLS_DIR=$STATE/kafka/tls
export REDIS_URL=redis://$HOST:$REDIS_PORT
export KAFKA_HOSTS=$HOST:$KAFKA_PORT
export CLICKHOUSE_HOST=$HOST
export CLICKHOUSE_PORT=$CH_TCP_PORT
EOF
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
stop) cmd_stop "${2:-}" ;;
start) cmd_start "${2:-}" ;;
*)
  echo "usage: $0 up|down|status|env|stop NAME|start NAME" >&2
  exit 2
  ;;
esac
