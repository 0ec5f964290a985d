"""A commit storm for the crash test: writers commit property changes to their own tables and to one shared table,
logging each acknowledged commit; the test kills the server with SIGKILL mid-storm, restarts it, and "verify" checks
that every table loads, its metadata file is on disk, and every acknowledged commit is visible.

    iceberg_storm.py URI ACK_FILE setup|storm|verify
"""
import os
import sys
import threading

import requests

uri, acks, phase = sys.argv[1:4]
WRITERS = 6
TABLES = ["s0", "s1", "s2", "shared"]
SCHEMA = {"type": "struct", "fields": [{"id": 1, "name": "id", "required": False, "type": "long"}]}


def setup():
    session = requests.Session()
    session.post(uri + "/v1/namespaces", json={"namespace": ["storm"]}).raise_for_status()
    for table in TABLES:
        session.post(uri + "/v1/namespaces/storm/tables", json={"name": table, "schema": SCHEMA}).raise_for_status()


def storm():
    lock = threading.Lock()
    log = open(acks, "a", buffering=1)

    def writer(index):
        session = requests.Session()
        count = 0
        while True:
            count += 1
            for table in (TABLES[index % 3], "shared"):
                body = {"requirements": [],
                        "updates": [{"action": "set-properties", "updates": {f"w{index}": str(count)}}]}
                try:
                    response = session.post(f"{uri}/v1/namespaces/storm/tables/{table}", json=body, timeout=10)
                except requests.RequestException:
                    return
                if response.status_code == 200:
                    with lock:
                        log.write(f"{table} w{index} {count}\n")
                elif response.status_code >= 500 or response.status_code == 409:
                    continue
                else:
                    raise SystemExit(f"unexpected {response.status_code}: {response.text}")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def verify():
    session = requests.Session()
    acknowledged = {}
    with open(acks) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                key = (parts[0], parts[1])
                acknowledged[key] = max(acknowledged.get(key, 0), int(parts[2]))
    if len(acknowledged) < WRITERS:
        raise SystemExit(f"the storm acknowledged too little before the kill: {acknowledged}")
    for table in TABLES:
        response = session.get(f"{uri}/v1/namespaces/storm/tables/{table}")
        response.raise_for_status()
        body = response.json()
        path = body["metadata-location"][len("file://"):]
        if not os.path.exists(path):
            raise SystemExit(f"{table}: metadata file {path} is missing")
        properties = body["metadata"].get("properties", {})
        for (acked_table, writer), count in acknowledged.items():
            if acked_table == table and int(properties.get(writer, "0")) < count:
                raise SystemExit(f"{table}: {writer} acknowledged {count}, visible {properties.get(writer)}")
    print(f"{sum(acknowledged.values())} acknowledged commits checked")


{"setup": setup, "storm": storm, "verify": verify}[phase]()
print("ok")
