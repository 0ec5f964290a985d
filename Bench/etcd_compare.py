#!/usr/bin/env python3
"""Strata's etcd front-end vs. Debian's etcd 3.4 (and the null server), side by side in one run on this machine.

Both servers run at once on free loopback ports with fresh temp data dirs; Strata with `sync = "always"` (every
acknowledged write fsynced, like etcd). Every scenario of `StrataEtcdBench` (the same client for both: unary calls
on its raw HTTP/2 client, watches on grpc-swift) runs against Strata and then against etcd before the next scenario starts, so drift on this shared machine hits both. Then
start-up time (from startup.py), RSS (each server's right after its own last scenario, then both after --settle
seconds idle), and `etcdctl check perf --load=s|m|l` against each.

A third server, Bench/NullEtcd (an etcd that stores nothing: a put costs only gRPC), runs the rows it can answer
(puts, gets, transactions): Strata / null is how close Strata gets to the ceiling this machine's load generator and
gRPC allow.

`--client clientv3` drives the rows with Go's clientv3 (Bench/ClientV3Bench, the client kube-apiserver uses,
fixed-duration rows) instead of the raw Swift client, and ends with an `etcd_clientv3:` line.

Prints a Markdown table with the ratio Strata/etcd per row (for latencies and RSS, lower is better: the ratio is
still Strata/etcd) and, with --write, replaces the section between the markers in docs/benchmarks.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import startup  # noqa: E402

BEGIN = "<!-- etcd-compare:begin -->"
END = "<!-- etcd-compare:end -->"
CLIENTV3_BEGIN = "<!-- etcd-clientv3:begin -->"
CLIENTV3_END = "<!-- etcd-clientv3:end -->"
# Rows the null server can answer (it stores nothing, so reads return nothing and it has no Watch).
NULL_SCENARIOS = {"seq-put", "put", "get", "txn"}


class Server:
    def __init__(self, name, command, client_port, health_port, directory, env=None):
        self.name = name
        self.client_port = client_port
        self.health_port = health_port
        self.directory = directory
        self.log = open(os.path.join(directory, "server.log"), "w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 30
        while not ((health_port is None or startup.healthy(health_port)) and startup.accepts(client_port)):
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{name} did not start: see {self.log.name}")
            time.sleep(0.01)

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.client_port}"

    def rss_mib(self):
        """VmRSS, VmHWM (peak), and VmRSS split into anonymous memory (heap, memtables, caches) and file-backed
        pages (the mapped code of the binary and its libraries)."""
        with open(f"/proc/{self.process.pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        mib = lambda name: int(fields[name].split()[0]) / 1024
        return mib("VmRSS"), mib("VmHWM"), mib("RssAnon"), mib("RssFile")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def start_strata(binary):
    directory = tempfile.mkdtemp(prefix="strata-etcd-bench-")
    client, admin = startup.free_port(), startup.free_port()
    config = os.path.join(directory, "config.toml")
    with open(config, "w") as f:
        f.write(f'[server]\ndata_dir = "{directory}/data"\nlog_level = "warning"\n'
                f'[storage]\nsync = "always"\n'
                f'[etcd]\nenabled = true\nlisten = "127.0.0.1:{client}"\n'
                f'[iceberg]\nenabled = false\n'
                f'[metrics]\nlisten = "127.0.0.1:{admin}"\n')
    return Server("strata", [binary, "serve", "--config", config], client, admin, directory)


def start_etcd(binary):
    directory = tempfile.mkdtemp(prefix="etcd-bench-")
    client, peer, metrics = startup.free_port(), startup.free_port(), startup.free_port()
    command = [
        binary, "--name", "bench", "--data-dir", os.path.join(directory, "data"),
        "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"bench=http://127.0.0.1:{peer}", "--listen-metrics-urls", f"http://127.0.0.1:{metrics}",
        "--log-level", "error",
    ]
    return Server("etcd", command, client, metrics, directory)


def start_null(binary):
    directory = tempfile.mkdtemp(prefix="null-etcd-bench-")
    client = startup.free_port()
    return Server("null", [binary, "-listen", f"127.0.0.1:{client}"], client, None, directory)


def run_clientv3(bench, server, scenario, seconds):
    command = [bench, "-endpoint", server.endpoint, "-scenario", scenario, "-seconds", str(seconds)]
    if server.name == "null":
        command.append("-check=false")
    result = subprocess.run(command, capture_output=True, text=True, timeout=int(seconds) + 240)
    if result.returncode != 0:
        raise RuntimeError(f"{scenario} against {server.name} failed:\n{result.stderr}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def run_bench(bench, server, scenario, scale):
    result = subprocess.run(
        [bench, "--endpoint", server.endpoint, "--scenario", scenario, "--scale", str(scale)],
        capture_output=True, text=True, timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{scenario} against {server.name} failed:\n{result.stderr}")
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def check_perf(etcdctl, server, load):
    """Runs `etcdctl check perf`; returns PASS/FAIL and etcdctl's own summary lines."""
    try:
        result = subprocess.run(
            [etcdctl, f"--endpoints={server.endpoint}", "check", "perf", f"--load={load}"],
            capture_output=True, text=True, timeout=240, env=dict(os.environ, ETCDCTL_API="3"),
        )
    except subprocess.TimeoutExpired:
        return "FAIL", "timed out"
    text = result.stdout + result.stderr
    # etcdctl prints its progress bar without newlines, so a verdict line can follow it on the same line.
    summary = [match.strip() for match in re.findall(r"(?:PASS|FAIL): [^\n]*", text)]
    lines = [line.strip() for line in text.splitlines()]
    verdict = "PASS" if result.returncode == 0 and "PASS" in lines else "FAIL"
    return verdict, "; ".join(summary) or (lines[-1] if lines else f"exit {result.returncode}")


def fmt(value, digits=1):
    return f"{value:,.{digits}f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strata", default=".build/release/strata")
    parser.add_argument("--bench", default=".build/release/StrataEtcdBench")
    parser.add_argument("--etcd", default=shutil.which("etcd") or "/usr/bin/etcd")
    parser.add_argument("--etcdctl", default=shutil.which("etcdctl") or "/usr/bin/etcdctl")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every scenario's operation count")
    parser.add_argument("--startup-runs", type=int, default=10)
    parser.add_argument("--check-perf", default="s,m,l", help="loads for etcdctl check perf ('' to skip)")
    parser.add_argument("--settle", type=float, default=15.0,
                        help="seconds both servers stay idle after the load before RSS is read again")
    parser.add_argument("--write", help="Markdown file whose etcd-compare section is replaced")
    parser.add_argument("--null", default=".build/nulletcd", help="Bench/NullEtcd binary ('' to skip)")
    parser.add_argument("--client", choices=["raw", "clientv3"], default="raw")
    parser.add_argument("--clientv3bench", default=".build/clientv3bench")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each clientv3 row")
    args = parser.parse_args()
    if args.client == "clientv3":
        return clientv3_main(args)

    etcd_version = subprocess.run([args.etcd, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    etcd_version = etcd_version.split()[-1] if etcd_version else "?"
    strata = start_strata(args.strata)
    etcd = start_etcd(args.etcd)
    null = start_null(args.null) if args.null else None
    rows = []
    nulls = {}
    notes = []
    rss = {}
    try:
        scenarios = ["seq-put", "put", "get", "range", "txn", "watch"]
        for scenario in scenarios:
            ours = run_bench(args.bench, strata, scenario, args.scale)
            if scenario == scenarios[-1]:
                rss["strata"] = strata.rss_mib()  # each server's right after its own last scenario
            theirs = run_bench(args.bench, etcd, scenario, args.scale)
            if null and scenario in NULL_SCENARIOS:
                for result in run_bench(args.bench, null, scenario, args.scale):
                    nulls[result["name"]] = result
            for a, b in zip(ours, theirs):
                rows.append((a, b))
                for result, server in ((a, "strata"), (b, "etcd")):
                    if result["errors"]:
                        notes.append(f"{result['name']} on {server}: {result['errors']} retried calls "
                                     f"(first: {result.get('first_error', '?')})")
                print(f"{a['name']}: strata {fmt(a['ops_per_second'])} ops/s, etcd {fmt(b['ops_per_second'])} ops/s",
                      file=sys.stderr)
        rss["etcd"] = etcd.rss_mib()
        time.sleep(args.settle)
        rss["strata idle"], rss["etcd idle"] = strata.rss_mib(), etcd.rss_mib()
        perf = {}
        for load in [load for load in args.check_perf.split(",") if load]:
            for server in (strata, etcd):
                perf[(server.name, load)] = check_perf(args.etcdctl, server, load)
                print(f"check perf --load={load} on {server.name}: {perf[(server.name, load)]}", file=sys.stderr)
    finally:
        for server in (strata, etcd, null):
            if server:
                server.stop()
                shutil.rmtree(server.directory, ignore_errors=True)

    strata_start, etcd_start = [], []
    for _ in range(args.startup_runs):
        strata_start.append(startup.strata_run(args.strata))
        etcd_start.append(startup.etcd_run(args.etcd))

    out = []
    out.append(f"| scenario | strata ops/s | etcd {etcd_version} ops/s | ratio | null server ops/s | strata / null | "
               f"strata p50 / p99 ms | etcd p50 / p99 ms | p99 ratio |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ratios = {}
    for a, b in rows:
        ratio = a["ops_per_second"] / b["ops_per_second"] if b["ops_per_second"] else float("inf")
        ratios[a["name"]] = ratio
        p99 = a["p99_ms"] / b["p99_ms"] if b["p99_ms"] else float("inf")
        n = nulls.get(a["name"])
        null_cells = (f"{fmt(n['ops_per_second'], 0)} | {a['ops_per_second'] / n['ops_per_second']:.2f}"
                      if n and n["ops_per_second"] else "— | —")
        out.append(f"| {a['name']} | {fmt(a['ops_per_second'], 0)} | {fmt(b['ops_per_second'], 0)} | "
                   f"**{ratio:.2f}x** | {null_cells} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
                   f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} | {p99:.2f} |")
    s_med, e_med = statistics.median(strata_start), statistics.median(etcd_start)
    out.append(f"| start-up to healthy, median of {args.startup_runs} (ms) | {s_med:.1f} | {e_med:.1f} | "
               f"{s_med / e_med:.2f} | | | | | |")
    for label, key in (("right after the load", ""), (f"after {args.settle:.0f} s idle", " idle")):
        (s_rss, _, s_anon, s_file), (e_rss, _, e_anon, e_file) = rss["strata" + key], rss["etcd" + key]
        out.append(f"| RSS {label} (MiB) | {s_rss:.0f} | {e_rss:.0f} | {s_rss / e_rss:.2f} | | | | | |")
        out.append(f"| — of which anonymous (heap, memtables, caches) | {s_anon:.0f} | {e_anon:.0f} | "
                   f"{s_anon / e_anon:.2f} | | | | | |")
        out.append(f"| — of which file-backed (mapped code) | {s_file:.0f} | {e_file:.0f} | "
                   f"{s_file / e_file:.2f} | | | | | |")
    strata_peak, etcd_peak = rss["strata idle"][1], rss["etcd idle"][1]
    out.append(f"| peak RSS (MiB) | {strata_peak:.0f} | {etcd_peak:.0f} | {strata_peak / etcd_peak:.2f} | | | | | |")
    rss_ratio = rss["strata"][0] / rss["etcd"][0]
    rss_idle_ratio = rss["strata idle"][0] / rss["etcd idle"][0]
    if perf:
        out.append("")
        out.append("| `etcdctl check perf` | strata | etcd |")
        out.append("| --- | --- | --- |")
        for load in [load for load in args.check_perf.split(",") if load]:
            s, e = perf[("strata", load)], perf[("etcd", load)]
            out.append(f"| `--load={load}` | **{s[0]}** ({s[1]}) | **{e[0]}** ({e[1]}) |")
    if notes:
        out.append("")
        out.append("Retried calls (the load generator retries a call whose connection dropped; the retry's time is in "
                   "the latency):")
        out.extend(f"- {note}" for note in notes)
    put = ratios.get("put, 64 clients", 0)
    get = ratios.get("get, linearizable, 64 clients", 0)
    put_null = next((a["ops_per_second"] / nulls[a["name"]]["ops_per_second"] for a, _ in rows
                     if a["name"] == "put, 64 clients" and a["name"] in nulls), 0)
    summary = (f"etcd: put64_ratio={put:.2f} get64_ratio={get:.2f} put64_null={put_null:.2f} rss_ratio={rss_ratio:.2f} "
               f"rss_idle_ratio={rss_idle_ratio:.2f} "
               f"check_perf_l={perf.get(('strata', 'l'), ('-',))[0]}")
    out.append("")
    out.append(f"`{summary}`")
    table = "\n".join(out)
    print(table)

    if args.write:
        write_section(args.write, BEGIN, END, table)


def write_section(path, begin, end, table):
    machine = f"{platform.node() or 'this machine'}: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"
    command = " ".join(["python3", "Bench/" + os.path.basename(sys.argv[0])] + sys.argv[1:])
    section = (f"{begin}\nRun of {datetime.date.today().isoformat()} on {machine}. Command: `{command}` "
               f"(part of `make bench`).\n\n{table}\n{end}")
    with open(path) as f:
        text = f.read()
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)


def clientv3_main(args):
    """The rows driven by Go's clientv3, Strata vs. etcd 3.4 vs. the null server, row by row."""
    etcd_version = subprocess.run([args.etcd, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    etcd_version = etcd_version.split()[-1] if etcd_version else "?"
    strata = start_strata(args.strata)
    etcd = start_etcd(args.etcd)
    null = start_null(args.null) if args.null else None
    results = {}
    try:
        for scenario in ["seq-put", "put", "get", "range", "txn", "watch"]:
            servers = [strata, etcd] + ([null] if null and scenario in NULL_SCENARIOS else [])
            for server in servers:
                for result in run_clientv3(args.clientv3bench, server, scenario, args.seconds):
                    results[(server.name, scenario)] = result
                    print(f"{result['name']} on {server.name}: {fmt(result['ops_per_second'])} ops/s "
                          f"(p50 {result['p50_ms']:.2f} ms, errors {result['errors']})", file=sys.stderr)
    finally:
        for server in (strata, etcd, null):
            if server:
                server.stop()
                shutil.rmtree(server.directory, ignore_errors=True)
    out = [f"| scenario (clientv3, {args.seconds:.0f} s per row) | strata ops/s | etcd {etcd_version} ops/s | "
           f"ratio | null server ops/s | strata / null | strata p50 / p99 ms | etcd p50 / p99 ms |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    ratios = {}
    notes = []
    for scenario in ["seq-put", "put", "get", "range", "txn", "watch"]:
        a, b, n = results[("strata", scenario)], results[("etcd", scenario)], results.get(("null", scenario))
        ratio = a["ops_per_second"] / b["ops_per_second"] if b["ops_per_second"] else float("inf")
        ratios[scenario] = ratio
        null_cells = "— | —"
        if n and n["ops_per_second"]:
            ratios[scenario + "_null"] = a["ops_per_second"] / n["ops_per_second"]
            null_cells = f"{fmt(n['ops_per_second'], 0)} | {ratios[scenario + '_null']:.2f}"
        out.append(f"| {a['name']} | {fmt(a['ops_per_second'], 0)} | {fmt(b['ops_per_second'], 0)} | "
                   f"**{ratio:.2f}x** | {null_cells} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
                   f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} |")
        for result, server in ((a, "strata"), (b, "etcd"), (n, "null")):
            if result and result["errors"]:
                notes.append(f"{result['name']} on {server}: {result['errors']} failed calls "
                             f"(first: {result.get('first_error', '?')})")
    if notes:
        out.append("")
        out.extend(f"- {note}" for note in notes)
    summary = (f"etcd_clientv3: seqput={ratios['seq-put']:.2f} put64={ratios['put']:.2f} get64={ratios['get']:.2f} "
               f"range={ratios['range']:.2f} txn={ratios['txn']:.2f} watch={ratios['watch']:.2f} "
               f"put64_null={ratios.get('put_null', 0):.2f}")
    out.append("")
    out.append(f"`{summary}`")
    table = "\n".join(out)
    print(table)
    if args.write:
        write_section(args.write, CLIENTV3_BEGIN, CLIENTV3_END, table)


if __name__ == "__main__":
    main()
