# deploy/local/lib.sh - the local stack, sourced by tests/run and
# deploy/local/demo: install what is missing, build, start Redis and a real
# single-node Kafka (KRaft) on free loopback ports, and stop everything that
# was started, whatever way the script ends.
#
# Functions set these variables: KURIR_ROOT, STACK_RUN (a private run
# directory), REDIS_PORT, KAFKA_BROKERS.

KURIR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KAFKA_VERSION=4.1.1
KURIR_CACHE=${KURIR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kurir}
STACK_PIDS=()
STACK_RUN=$(mktemp -d "${TMPDIR:-/tmp}/kurir-stack.XXXXXX")

stack_log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

stack_cleanup() {
    local pid
    for pid in "${STACK_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STACK_PIDS[@]}"; do
        # Kafka's controlled shutdown takes a few seconds; then force it.
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    STACK_PIDS=()
    [ -n "${STACK_KEEP_RUN:-}" ] || rm -rf "$STACK_RUN"
}
trap stack_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Installs the Debian packages kurir needs that are missing (apt-get only for
# what is missing, so a warm machine is not touched), and the packages named
# as arguments (tests/bench/compare: kannel nginx-light gnuplot-nox).
stack_deps() {
    local want=(build-essential cmake ninja-build pkg-config clang
        clang-format libclang-rt-14-dev librdkafka-dev libcurl4-openssl-dev
        libjansson-dev libxml2-dev libhiredis-dev libcriterion-dev libjemalloc-dev
        libmicrohttpd-dev redis-server kcat wrk shellcheck maven
        openjdk-17-jre-headless curl python3-jsonschema python3-confluent-kafka
        prometheus redis-sentinel stunnel4 openssl "$@") # promtool; Sentinel and TLS-sidecar tests
    local missing=() p
    for p in "${want[@]}"; do
        if [ "$p" = openjdk-17-jre-headless ] && command -v java >/dev/null; then
            continue # any Java 17 will do, Debian's or another
        fi
        if [ "$p" = maven ] && command -v mvn >/dev/null; then
            continue
        fi
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    stack_log "installing: ${missing[*]}"
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}

# Builds into $1 (a build directory) with the remaining arguments passed to
# cmake's configure step.
stack_build() {
    local dir=$1
    shift
    cmake -S "$KURIR_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
    cmake --build "$dir" -j"$(nproc)"
}

# Prints a TCP port on 127.0.0.1 that nothing listens on.
stack_free_port() {
    local p
    while :; do
        # Below Linux's ephemeral range (32768-60999), where outgoing
        # connections take their local ports and a listener may not bind.
        p=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

# Waits up to $1 seconds for the command in the remaining arguments to
# succeed; fails if the process $STACK_WAIT_PID died meanwhile.
stack_wait() {
    local secs=$1
    shift
    local deadline=$((SECONDS + secs))
    while ! "$@" >/dev/null 2>&1; do
        if [ -n "${STACK_WAIT_PID:-}" ] && ! kill -0 "$STACK_WAIT_PID" 2>/dev/null; then
            return 1
        fi
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

stack_redis_start() {
    REDIS_PORT=$(stack_free_port)
    # As production runs it: kurir's send-once markers, schedules and
    # retries must survive a restart (docs/redis.md), so the append-only
    # file is on, written every second.
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly yes --appendfsync everysec --dir "$STACK_RUN" \
        --loglevel warning \
        >"$STACK_RUN/redis.log" 2>&1 &
    STACK_PIDS+=($!)
    STACK_WAIT_PID=$! stack_wait 20 redis-cli -p "$REDIS_PORT" ping || {
        cat "$STACK_RUN/redis.log" >&2
        stack_log "redis-server did not start"
        return 1
    }
    stack_log "redis-server ready on 127.0.0.1:$REDIS_PORT (pid ${STACK_PIDS[-1]})"
}

# Fetches the Kafka broker's jars from Maven Central once into the cache.
stack_kafka_jars() {
    # The cache is keyed by the recipe, so a changed pom.xml fetches anew.
    local key
    key=$(sha1sum "$KURIR_ROOT/deploy/local/kafka/pom.xml" | cut -c1-12)
    KAFKA_LIBS=$KURIR_CACHE/kafka-$KAFKA_VERSION-$key/libs
    [ -f "$KAFKA_LIBS/.complete" ] && return 0
    stack_log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central"
    rm -rf "$KAFKA_LIBS"
    mkdir -p "$KAFKA_LIBS"
    mvn -B -q -f "$KURIR_ROOT/deploy/local/kafka/pom.xml" \
        dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$KAFKA_LIBS" >&2
    touch "$KAFKA_LIBS/.complete"
}

# Runs Kafka's Java classes with the cached jars: stack_kafka_java ARGS...
# (with STACK_KAFKA_EXEC set, the shell becomes the Java process).
stack_kafka_java() {
    ${STACK_KAFKA_EXEC:+exec} java -cp "$KAFKA_LIBS/*" \
        -Dlog4j2.configurationFile="$KURIR_ROOT/deploy/local/kafka/log4j2.properties" "$@"
}

# Writes DIR/server.properties for a broker listening on PORT (controller
# on CPORT) with its data in DIR/data, and formats that KRaft storage:
# stack_kafka_format DIR PORT CPORT. The ports stay in the file, so a
# broker started again on DIR comes back on the same ones.
stack_kafka_format() {
    local dir=$1 port=$2 cport=$3
    mkdir -p "$dir/data"
    sed -e "s|@PORT@|$port|g" -e "s|@CPORT@|$cport|g" -e "s|@DATA@|$dir/data|g" \
        "$KURIR_ROOT/deploy/local/kafka/server.properties.in" >"$dir/server.properties"
    stack_kafka_java kafka.tools.StorageTool format --standalone \
        -t "$(stack_kafka_java kafka.tools.StorageTool random-uuid | tail -1)" \
        -c "$dir/server.properties" >"$dir/format.log" 2>&1 || {
        cat "$dir/format.log" >&2
        return 1
    }
}

# Becomes the broker formatted in DIR (exec: the caller's pid is the
# broker's, so SIGTERM is its controlled shutdown): stack_kafka_exec DIR.
stack_kafka_exec() {
    STACK_KAFKA_EXEC=1 stack_kafka_java -Xms256m -Xmx512m -XX:+UseG1GC \
        -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true -Dkafka.logs.dir="$1" \
        kafka.Kafka "$1/server.properties" >"$1/broker.log" 2>&1
}

stack_kafka_start() {
    stack_kafka_jars
    local port cport dir=$STACK_RUN/kafka
    port=$(stack_free_port)
    cport=$(stack_free_port)
    while [ "$cport" = "$port" ]; do cport=$(stack_free_port); done
    stack_kafka_format "$dir" "$port" "$cport" || return 1
    stack_kafka_exec "$dir" &
    STACK_PIDS+=($!)
    KAFKA_BROKERS=127.0.0.1:$port
    STACK_WAIT_PID=$! stack_wait 120 kcat -b "$KAFKA_BROKERS" -L -m 2 || {
        tail -40 "$dir/broker.log" >&2
        stack_log "Kafka broker did not start"
        return 1
    }
    stack_log "Apache Kafka $KAFKA_VERSION (KRaft) ready on $KAFKA_BROKERS (pid ${STACK_PIDS[-1]})"
}

# Creates topics ahead of use so the first job does not wait for
# auto-creation: stack_topics PARTITIONS TOPIC... It also creates the
# latest-state topic (KURIR_TOPIC_LATEST, default sms.status.latest)
# log-compacted, as auto-creation would not (docs/cookbook.md).
stack_topics() {
    local parts=$1 t
    shift
    for t in "$@" "${KURIR_TOPIC_LATEST:-sms.status.latest}"; do
        local conf=()
        [ "$t" = "${KURIR_TOPIC_LATEST:-sms.status.latest}" ] &&
            conf=(--config cleanup.policy=compact)
        stack_kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" \
            --create --if-not-exists --topic "$t" --partitions "$parts" \
            --replication-factor 1 "${conf[@]}" >/dev/null
    done
}
