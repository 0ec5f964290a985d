"""A short, realistic redis-py workload against a Redis-compatible server; exits non-zero on the first surprise.

    python redis_workload.py PORT EXPECTED_RESP

Pipelines, transactions with WATCH retried under contention, pub/sub, a blocking producer/consumer queue,
expiry, scans and the typed replies redis-py decodes (floats, maps, sets). Every check compares with values
computed here, so the same script passes against redis-server 7.0.
"""

import sys
import threading
import time

import redis


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def main():
    port, expected_resp = int(sys.argv[1]), sys.argv[2]
    r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    r.flushall()
    info = r.client_info()
    check(str(info.get("resp")) == expected_resp, f"client speaks RESP{info.get('resp')}, expected {expected_resp}")
    check(r.info("server")["redis_version"].startswith("7."), "redis_version")

    # Pipelines: many commands, one round trip, replies in order.
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set(f"user:{i}", i)
        pipe.incr("counter")
    replies = pipe.execute()
    check(replies[1::2] == list(range(1, 1001)), "pipelined INCR replies")
    check(r.mget("user:0", "user:999", "user:x") == ["0", "999", None], "MGET")
    check(r.dbsize() == 1001, "DBSIZE after pipeline")

    # Hashes, sets, sorted sets as redis-py decodes them.
    r.hset("h", mapping={"a": "1", "b": "2"})
    check(r.hgetall("h") == {"a": "1", "b": "2"}, "HGETALL")
    check(r.hincrbyfloat("h", "a", 0.5) == 1.5, "HINCRBYFLOAT")
    r.sadd("s", "x", "y", "z")
    check(r.smembers("s") == {"x", "y", "z"}, "SMEMBERS")
    r.zadd("z", {"one": 1, "two": 2, "three": 3})
    check(r.zrange("z", 0, -1, withscores=True) == [("one", 1.0), ("two", 2.0), ("three", 3.0)], "ZRANGE WITHSCORES")
    check(r.zscore("z", "two") == 2.0, "ZSCORE")
    check(r.zincrby("z", 0.5, "one") == 1.5, "ZINCRBY")
    check(r.zrangebyscore("z", "(1.5", "+inf") == ["two", "three"], "ZRANGEBYSCORE")

    # Transactions with WATCH, retried under contention from several threads: no increment is lost.
    r.set("balance", 0)

    def add(times):
        client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
        for _ in range(times):
            with client.pipeline() as tx:
                while True:
                    try:
                        tx.watch("balance")
                        current = int(tx.get("balance"))
                        tx.multi()
                        tx.set("balance", current + 1)
                        tx.execute()
                        break
                    except redis.WatchError:
                        continue

    workers = [threading.Thread(target=add, args=(50,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    check(r.get("balance") == "200", f"balance after WATCH retries is {r.get('balance')}")
    with r.pipeline() as tx:
        tx.incr("t").lpush("tl", "a").execute()
    check(r.get("t") == "1" and r.lrange("tl", 0, -1) == ["a"], "MULTI/EXEC pipeline")

    # Pub/sub: channel and pattern subscribers get every message, in order.
    pubsub = r.pubsub()
    pubsub.subscribe("news")
    pubsub.psubscribe("ne*")
    for _ in range(2):
        check(pubsub.get_message(timeout=5)["type"] in ("subscribe", "psubscribe"), "subscribe confirmation")
    check(r.publish("news", "hello") == 2, "PUBLISH receivers")
    got = [pubsub.get_message(timeout=5) for _ in range(2)]
    check(sorted(m["type"] for m in got) == ["message", "pmessage"], f"pub/sub messages {got}")
    check(all(m["data"] == "hello" for m in got), "pub/sub payload")
    check(r.pubsub_numsub("news") == [("news", 1)], "PUBSUB NUMSUB")
    pubsub.close()

    # A blocking queue: a consumer waits in BLPOP/BRPOP while a producer pushes.
    received = []

    def consume():
        client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
        while True:
            item = client.blpop(["jobs"], timeout=5)
            check(item is not None, "consumer timed out")
            if item[1] == "stop":
                return
            received.append(item[1])

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.1)
    for i in range(100):
        r.rpush("jobs", f"job-{i}")
    r.rpush("jobs", "stop")
    consumer.join(10)
    check(received == [f"job-{i}" for i in range(100)], "queue order")
    check(r.brpop(["nothing"], timeout=0.1) is None, "BRPOP timeout")

    # Expiry.
    r.set("session", "s", px=100)
    check(0 < r.pttl("session") <= 100, "PTTL")
    time.sleep(0.25)
    check(r.get("session") is None and r.ttl("session") == -2, "expired key")
    r.set("persist", "p", ex=100)
    r.persist("persist")
    check(r.ttl("persist") == -1, "PERSIST")

    # Iteration.
    keys = set(r.scan_iter(match="user:1*", count=100))
    check(keys == {f"user:{i}" for i in range(1000) if str(i).startswith("1")}, "SCAN MATCH")
    check(len(list(r.hscan_iter("h"))) == 2, "HSCAN")

    # Errors come back as the exceptions redis-py maps them to.
    try:
        r.lpush("h", "x")
        raise AssertionError("WRONGTYPE not raised")
    except redis.ResponseError as error:
        check(str(error).startswith("WRONGTYPE"), "WRONGTYPE text")
    print("ok")


if __name__ == "__main__":
    main()
