# Sourced by scripts that start a throw-away Strata: `temp_config DIR [TOML]` picks two free loopback ports (sets
# etcd_port and admin_port) and writes DIR/config.toml with the data dir under DIR, the etcd and admin listeners
# on them, and TOML appended (extra sections or keys).
temp_config() {
  local dir=$1 extra=${2:-}
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  etcd_port=$(free_port)
  admin_port=$(free_port)
  cat > "$dir/config.toml" <<TOML
[server]
data_dir = "$dir/data"
[etcd]
listen = "127.0.0.1:$etcd_port"
[metrics]
listen = "127.0.0.1:$admin_port"
$extra
TOML
  # The Iceberg catalog's default port is fixed; throw-away servers leave it alone unless asked.
  case "$extra" in *"[iceberg]"*) ;; *) printf '[iceberg]\nenabled = false\n' >> "$dir/config.toml" ;; esac
}
