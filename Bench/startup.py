#!/usr/bin/env python3
"""Start-up time to a healthy /health: Strata vs. Debian's etcd, measured side by side in one run.

Each run starts the server on free loopback ports with a fresh temp data dir, polls GET /health every millisecond
until it answers 200 with "health":"true", records the elapsed time, then stops the server with SIGTERM. Runs
alternate between the two servers so machine noise hits both alike. Prints medians and the ratio Strata/etcd.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"HTTP/1.1 200") and b'"health":"true"' in data
    except OSError:
        return False


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def measure(command, port, env=None, timeout=30, also_listening=None):
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        while time.perf_counter() - started < timeout:
            if healthy(port) and (also_listening is None or accepts(also_listening)):
                return (time.perf_counter() - started) * 1000
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}")
            time.sleep(0.001)
        raise RuntimeError(f"{command[0]} not healthy after {timeout}s")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def strata_run(binary, warm=False):
    directory = tempfile.mkdtemp(prefix="strata-bench-")
    if warm:
        # An existing data directory (a restart, the everyday case): create it first, then measure the second start.
        strata_start(binary, directory)
    try:
        return strata_start(binary, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def strata_start(binary, directory):
    port = free_port()
    etcd_port = free_port()
    config = os.path.join(directory, "config.toml")
    with open(config, "w") as f:
        f.write(f'[server]\ndata_dir = "{directory}/data"\nlog_level = "error"\n'
                f'[etcd]\nenabled = true\nlisten = "127.0.0.1:{etcd_port}"\n'
                f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    # Healthy means /health answers and the etcd gRPC port accepts connections.
    return measure([binary, "serve", "--config", config], port, also_listening=etcd_port)


def etcd_run(binary):
    directory = tempfile.mkdtemp(prefix="etcd-bench-")
    client, peer, metrics = free_port(), free_port(), free_port()
    command = [
        binary, "--name", "bench", "--data-dir", directory,
        "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"bench=http://127.0.0.1:{peer}", "--listen-metrics-urls", f"http://127.0.0.1:{metrics}",
        "--log-level", "error",
    ]
    env = dict(os.environ, ETCD_UNSUPPORTED_ARCH=os.environ.get("ETCD_UNSUPPORTED_ARCH", ""))
    try:
        return measure(command, metrics, env=env)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strata", default=".build/release/strata")
    parser.add_argument("--etcd", default=shutil.which("etcd"))
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    strata, strata_warm, etcd = [], [], []
    for _ in range(args.runs):
        strata.append(strata_run(args.strata))
        strata_warm.append(strata_run(args.strata, warm=True))
        if args.etcd:
            etcd.append(etcd_run(args.etcd))

    def row(name, samples):
        samples = sorted(samples)
        p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
        return f"| {name} | {statistics.median(samples):.1f} | {samples[0]:.1f} | {p90:.1f} |"

    print(f"start-up to healthy /health, {args.runs} runs each (ms)")
    print("| server | median | min | p90 |")
    print("| --- | --- | --- | --- |")
    print(row("strata, new data dir", strata))
    print(row("strata, existing data dir (restart)", strata_warm))
    if etcd:
        print(row("etcd new data dir " + subprocess.run([args.etcd, "--version"], capture_output=True, text=True)
                  .stdout.split("\n")[0].split()[-1], etcd))
        print(f"startup: strata_median_ms={statistics.median(strata):.1f} "
              f"strata_restart_median_ms={statistics.median(strata_warm):.1f} "
              f"etcd_median_ms={statistics.median(etcd):.1f} "
              f"ratio={statistics.median(strata) / statistics.median(etcd):.3f}")
    else:
        print("etcd not found: no comparison", file=sys.stderr)


if __name__ == "__main__":
    main()
