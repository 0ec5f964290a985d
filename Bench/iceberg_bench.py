#!/usr/bin/env python3
"""The Iceberg REST catalog under load: Strata (release build, `[storage] sync = "always"`: every commit's metadata
file and pointer are fsynced before the reply) on a free loopback port with a fresh temp data dir and warehouse,
driven by the compiled load generator Bench/IcebergBench (keep-alive sockets, 1 or 16 connections).

There is no reference catalog on this machine to run side by side; the issue's targets (loadTable p50 <= 1 ms,
commit p50 <= 5 ms, listing 10,000 tables <= 50 ms) and published anchors (rustberg: load 8.4 ms, commit 52 ms mean)
are printed beside the figures. RSS is the server's after the whole load.

    python3 Bench/iceberg_bench.py --strata .build/release/strata --bench .build/release/StrataIcebergBench \
        [--write docs/benchmarks.md] [--quick]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from etcd_compare import write_section  # noqa: E402
from startup import free_port  # noqa: E402

BEGIN = "<!-- iceberg-bench:begin -->"
END = "<!-- iceberg-bench:end -->"


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strata", default=".build/release/strata")
    parser.add_argument("--bench", default=".build/release/StrataIcebergBench")
    parser.add_argument("--write")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="strata-iceberg-bench-")
    port, admin = free_port(), free_port()
    config = os.path.join(directory, "strata.toml")
    with open(config, "w") as f:
        f.write(f"""[server]
data_dir = "{directory}/data"
log_level = "warning"
[storage]
sync = "always"
[etcd]
enabled = false
[redis]
enabled = false
[iceberg]
listen = "127.0.0.1:{port}"
warehouse = "{directory}/warehouse"
[metrics]
listen = "127.0.0.1:{admin}"
""")
    server = subprocess.Popen([os.path.abspath(args.strata), "serve", "--config", config],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        import socket
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        command = [os.path.abspath(args.bench), str(port)] + (["--quick"] if args.quick else [])
        output = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if output.returncode != 0:
            raise SystemExit(f"IcebergBench failed:\n{output.stdout}\n{output.stderr}")
        resident = rss(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)
    lines = output.stdout.strip().split("\n")
    summary = lines[-1]
    values = dict(re.findall(r"(\w+)=([\d.]+)", summary))
    out = ["Strata's Iceberg catalog (`sync = \"always\"`: metadata file and pointer fsynced before each reply), "
           "driven by `Bench/IcebergBench` (compiled, keep-alive loopback connections). Latency per request:", "",
           "```"] + lines[:-1] + ["```", "",
                                   f"- Targets: loadTable p50 {values['load_p50_ms']} ms (≤ 1 ms), commit p50 "
                                   f"{values['commit_p50_ms']} ms (≤ 5 ms), list of 10,000 tables "
                                   f"{values['list10k_ms']} ms (≤ 50 ms). Published anchors (not run here): "
                                   "rustberg load 8.4 ms and commit 52 ms mean.",
                                   f"- Server RSS after the load: {resident / 2**20:.0f} MiB.", "", f"`{summary}`"]
    table = "\n".join(out)
    print(table)
    if args.write:
        write_section(args.write, BEGIN, END, table)
    print(summary)


if __name__ == "__main__":
    main()
