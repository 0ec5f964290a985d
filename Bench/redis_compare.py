#!/usr/bin/env python3
"""Strata's Redis front-end against Debian's redis-server 7.0, side by side in one run.

    python3 Bench/redis_compare.py [--strata .build/release/strata] [--rounds 3] [--write docs/benchmarks.md]

- Throughput: redis-benchmark for SET GET INCR LPUSH LPOP SADD HSET ZADD MSET, and PFADD, EVALSHA (a script of one
  INCR) and XADD (`MAXLEN ~ 10000 *`) as custom commands, `-c 50` unpipelined and `-P 16`,
  servers alternating test by test, each row the median of `--rounds`. Redis runs as it ships for caches (no
  persistence: `--save '' --appendonly no`); Strata runs with `appendfsync everysec` on a data directory.
- Memory: resident set of each server after 1,000,000 random SETs (`-r 1000000`, ~630,000 distinct keys).
- Start-up: time from exec to the first PONG with 1,000,000 keys on disk (Redis: loading its RDB; Strata: opening
  its store), median of 5.

Prints a table (Markdown) and a last line `redis: unpipelined_min_ratio=X pipelined_min_ratio=Y`; with --write,
replaces the section between the markers in docs/benchmarks.md.
"""

import argparse
import hashlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from etcd_compare import write_section  # noqa: E402

BEGIN = "<!-- redis-compare:begin -->"
END = "<!-- redis-compare:end -->"
TESTS = ["set", "get", "incr", "lpush", "lpop", "sadd", "hset", "zadd", "mset", "pfadd", "evalsha", "xadd"]
# EVALSHA's script: one INCR (loaded into both servers before the runs).
INCR_SCRIPT = "return redis.call('INCR', KEYS[1])"
INCR_SHA = hashlib.sha1(INCR_SCRIPT.encode()).hexdigest()
# Rows redis-benchmark has no built-in test for: the command it sends instead (__rand_int__ is replaced per request).
CUSTOM = {
    "pfadd": ["PFADD", "hll", "__rand_int__"],
    "evalsha": ["EVALSHA", INCR_SHA, "1", "counter:__rand_int__"],
    "xadd": ["XADD", "events", "MAXLEN", "~", "10000", "*", "field", "__rand_int__"],
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_pong(port, timeout=60.0):
    """Seconds until the server answers PING with PONG (loading replies do not count)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError(f"no PONG on port {port}")


class Server:
    def __init__(self, name, argv, port, cwd):
        self.name, self.port = name, port
        self.log = open(os.path.join(cwd, f"{name}.log"), "ab")
        self.started = time.monotonic()
        self.process = subprocess.Popen(argv, cwd=cwd, stdout=self.log, stderr=self.log)
        self.startup = wait_for_pong(port)

    def rss_bytes(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True).stdout

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def start_redis(directory, port, dbfilename="dump.rdb"):
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", directory, "--dbfilename", dbfilename, "--daemonize", "no", "--loglevel", "warning"]
    return Server("redis", argv, port, directory)


def start_strata(binary, directory, port):
    config = os.path.join(directory, "strata.toml")
    with open(config, "w") as f:
        f.write(f"""[server]
data_dir = "{directory}/data"
log_level = "warning"
[etcd]
enabled = false
[redis]
listen = "127.0.0.1:{port}"
appendfsync = "everysec"
[iceberg]
enabled = false
[metrics]
listen = "127.0.0.1:{free_port()}"
""")
    return Server("strata", [os.path.abspath(binary), "serve", "--config", config], port, directory)


def benchmark(port, test, pipeline, requests):
    argv = ["redis-benchmark", "-p", str(port), "-c", "50", "-n", str(requests), "-r", "100000",
            "-P", str(pipeline), "-q", "--csv"] + (CUSTOM[test] if test in CUSTOM else ["-t", test])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600).stdout
    for line in out.splitlines():
        fields = [f.strip('"') for f in line.split('","')]
        if len(fields) >= 2 and fields[0] != "test":
            return float(fields[1])
    raise RuntimeError(f"redis-benchmark printed nothing usable: {out!r}")


def throughput(redis, strata, rounds, requests):
    results = {}
    for pipeline in (1, 16):
        for test in TESTS:
            samples = {"redis": [], "strata": []}
            for _ in range(rounds):
                for server in (redis, strata):
                    count = requests * (4 if pipeline > 1 else 1)
                    samples[server.name].append(benchmark(server.port, test, pipeline, count))
            results[(test, pipeline)] = (statistics.median(samples["redis"]), statistics.median(samples["strata"]))
            r, s = results[(test, pipeline)]
            print(f"  {test:6} -P {pipeline:2}: redis {r:10.0f}/s  strata {s:10.0f}/s  ratio {s / r:.2f}",
                  file=sys.stderr, flush=True)
    return results


def fill(server, keys):
    subprocess.run(["redis-benchmark", "-p", str(server.port), "-c", "50", "-n", str(keys), "-r", str(keys),
                    "-t", "set", "-P", "16", "-q"], capture_output=True, check=True)


def startup_times(binary, work, keys, runs):
    """Median time to the first PONG with `keys` keys on disk, for each server."""
    redis_dir, strata_dir = os.path.join(work, "redis-start"), os.path.join(work, "strata-start")
    os.makedirs(redis_dir)
    os.makedirs(strata_dir)
    port = free_port()
    # The same keys and values in both (key:N → value:N), mass-inserted.
    lines = "".join(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${len(v)}\r\n{v}\r\n"
                    for k, v in ((f"key:{i}", f"value:{i}") for i in range(keys))).encode()
    redis = start_redis(redis_dir, port)
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=lines, capture_output=True, check=True)
    redis.cli("SAVE")
    redis_keys = int(redis.cli("DBSIZE").strip() or 0)
    redis.stop()
    strata = start_strata(binary, strata_dir, port)
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=lines, capture_output=True, check=True)
    strata_keys = int(strata.cli("DBSIZE").strip() or 0)
    strata.stop()
    times = {"redis": [], "strata": []}
    for _ in range(runs):
        server = start_redis(redis_dir, port)
        times["redis"].append(server.startup)
        server.stop()
        server = start_strata(binary, strata_dir, port)
        times["strata"].append(server.startup)
        server.stop()
    return statistics.median(times["redis"]), statistics.median(times["strata"]), redis_keys, strata_keys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strata", default=".build/release/strata")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100000)
    parser.add_argument("--keys", type=int, default=1000000)
    parser.add_argument("--write")
    args = parser.parse_args()
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]

    with tempfile.TemporaryDirectory(prefix="redis-compare") as work:
        redis_dir, strata_dir = os.path.join(work, "redis"), os.path.join(work, "strata")
        os.makedirs(redis_dir)
        os.makedirs(strata_dir)
        redis = start_redis(redis_dir, free_port())
        strata = start_strata(args.strata, strata_dir, free_port())
        try:
            for server in (redis, strata):
                server.cli("SCRIPT", "LOAD", INCR_SCRIPT)
            results = throughput(redis, strata, args.rounds, args.requests)
            for server in (redis, strata):
                server.cli("FLUSHALL")
            fill(redis, args.keys)
            fill(strata, args.keys)
            time.sleep(2)
            rss = (redis.rss_bytes(), strata.rss_bytes())
            sizes = (int(redis.cli("DBSIZE").strip() or 0), int(strata.cli("DBSIZE").strip() or 0))
        finally:
            redis.stop()
            strata.stop()
        startup = startup_times(args.strata, work, args.keys, 5)

    out = [f"Redis {version} (`--save '' --appendonly no`) vs. Strata (`appendfsync everysec`, data on disk); "
           f"redis-benchmark `-c 50 -r 100000`, {args.requests:,} requests unpipelined and {4 * args.requests:,} "
           f"with `-P 16`; servers alternate test by test; medians of {args.rounds} rounds.", "",
           "| test | Redis ops/s | Strata ops/s | ratio | Redis `-P 16` | Strata `-P 16` | ratio |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    unpipelined, pipelined = [], []
    for test in TESTS:
        r1, s1 = results[(test, 1)]
        r16, s16 = results[(test, 16)]
        unpipelined.append(s1 / r1)
        pipelined.append(s16 / r16)
        out.append(f"| {test.upper()} | {r1:,.0f} | {s1:,.0f} | {s1 / r1:.2f} | {r16:,.0f} | {s16:,.0f} | "
                   f"{s16 / r16:.2f} |")
    out.append("")
    out.append(f"- RSS after {args.keys:,} random SETs (`-r {args.keys}`; Redis {sizes[0]:,} keys, Strata "
               f"{sizes[1]:,}): Redis {rss[0] / 2**20:.0f} MiB, Strata {rss[1] / 2**20:.0f} MiB, "
               f"ratio {rss[1] / rss[0]:.2f} (target ≤ 1.0).")
    out.append(f"- Start-up to the first PONG with {args.keys:,} keys on disk (Redis {startup[2]:,} keys from its RDB, "
               f"Strata {startup[3]:,} in its store), median of 5: Redis {startup[0] * 1000:.0f} ms, Strata "
               f"{startup[1] * 1000:.0f} ms, ratio {startup[1] / startup[0]:.2f} (target ≤ 0.5).")
    summary = (f"redis: unpipelined_min_ratio={min(unpipelined):.2f} pipelined_min_ratio={min(pipelined):.2f} "
               f"rss_ratio={rss[1] / rss[0]:.2f} startup_ratio={startup[1] / startup[0]:.2f}")
    out.append("")
    out.append(f"`{summary}`")
    table = "\n".join(out)
    print(table)
    if args.write:
        write_section(args.write, BEGIN, END, table)
    print(f"redis: unpipelined_min_ratio={min(unpipelined):.2f} pipelined_min_ratio={min(pipelined):.2f}")


if __name__ == "__main__":
    main()
