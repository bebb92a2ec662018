# Helpers for scripts/test and bench/: install what the tests need from Debian's packages when
# it is missing, and start throwaway servers on 127.0.0.1 at free ports, stopped by PID on exit.
# Sourced, not run.

# apt_install PACKAGE... — installs missing Debian packages when we are root.
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "scripts: missing Debian packages ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
        return 1
    fi
    echo "scripts: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # The lock timeout matters on a shared machine where another apt may be running.
    apt-get update -qq -o DPkg::Lock::Timeout=300 >/dev/null
    apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
}

# free_port — prints a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_influxd — starts Debian's influxd on 127.0.0.1 with its data in a temporary directory
# and a config of ours (the package's default binds every interface). Sets INFLUX_PID,
# INFLUX_DIR and MIZUMORI_TEST_INFLUX_URL. Call stop_influxd on exit.
start_influxd() {
    INFLUX_DIR=$(mktemp -d -t mizumori-influx.XXXXXX)
    local http_port rpc_port
    http_port=$(free_port)
    rpc_port=$(free_port)
    cat > "$INFLUX_DIR/influxdb.conf" <<CONF
reporting-enabled = false
bind-address = "127.0.0.1:$rpc_port"
[meta]
  dir = "$INFLUX_DIR/meta"
[data]
  dir = "$INFLUX_DIR/data"
  wal-dir = "$INFLUX_DIR/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$http_port"
  log-enabled = false
  pprof-enabled = false
[monitor]
  store-enabled = false
CONF
    influxd run -config "$INFLUX_DIR/influxdb.conf" > "$INFLUX_DIR/influxd.log" 2>&1 &
    INFLUX_PID=$!
    local url="http://127.0.0.1:$http_port"
    for _ in $(seq 1 100); do
        if curl -fsS -o /dev/null "$url/ping" 2>/dev/null; then
            export MIZUMORI_TEST_INFLUX_URL="$url"
            echo "scripts: influxd (pid $INFLUX_PID) on $url" >&2
            return 0
        fi
        if ! kill -0 "$INFLUX_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "scripts: influxd did not answer /ping; its log:" >&2
    cat "$INFLUX_DIR/influxd.log" >&2
    return 1
}

stop_influxd() {
    if [ -n "${INFLUX_PID:-}" ]; then
        kill "$INFLUX_PID" 2>/dev/null || true
        wait "$INFLUX_PID" 2>/dev/null || true
        INFLUX_PID=
    fi
    if [ -n "${INFLUX_DIR:-}" ]; then
        rm -rf "$INFLUX_DIR"
        INFLUX_DIR=
    fi
}

# ensure_pymodbus — a virtual environment under target/ with pymodbus (the collector's peer)
# and openpyxl (reads the dashboard's xlsx exports); sets MIZUMORI_TEST_PYTHON.
ensure_pymodbus() {
    local venv=target/test-venv
    if ! "$venv/bin/python" -c "import pymodbus, openpyxl" 2>/dev/null; then
        echo "scripts: installing pymodbus and openpyxl into $venv" >&2
        python3 -m venv "$venv" && "$venv/bin/pip" install -q "pymodbus==3.16.1" "openpyxl==3.1.5" || return 1
    fi
    MIZUMORI_TEST_PYTHON="$PWD/$venv/bin/python"
}
