"""A job-queue workload against Strata: rq enqueues jobs, a burst worker runs them, results and registries are
checked; then redis-py's Lock (its Lua scripts, run by EVALSHA with the NOSCRIPT fallback) guards a counter.

    rq_workload.py PORT   → prints "ok" and exits 0, or raises.
"""

import sys
import threading

from redis import Redis
from rq import Queue, Retry, SimpleWorker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from rq_jobs import add, concatenate, fail


def main():
    port = int(sys.argv[1])
    connection = Redis(host="127.0.0.1", port=port)
    connection.flushall()

    queue = Queue("default", connection=connection)
    jobs = [queue.enqueue(add, i, i * 10, result_ttl=600) for i in range(40)]
    failing = queue.enqueue(fail, "expected failure", retry=Retry(max=1))
    parent = queue.enqueue(concatenate, "a", "b")
    child = queue.enqueue(concatenate, "c", "d", depends_on=parent)
    assert child.get_status() == JobStatus.DEFERRED, child.get_status()
    assert queue.count == 42, queue.count

    high = Queue("high", connection=connection)
    urgent = high.enqueue(add, 1000, 1)

    worker = SimpleWorker([high, queue], connection=connection)
    worked = worker.work(burst=True)
    assert worked

    for i, job in enumerate(jobs):
        job.refresh()
        assert job.get_status() == JobStatus.FINISHED, (i, job.get_status())
        assert job.return_value() == i + i * 10, (i, job.return_value())
    assert Job.fetch(urgent.id, connection=connection).return_value() == 1001
    assert Job.fetch(parent.id, connection=connection).return_value() == "ab"
    assert Job.fetch(child.id, connection=connection).return_value() == "cd"

    failed = FailedJobRegistry(queue=queue)
    assert failing.id in failed.get_job_ids(), failed.get_job_ids()
    failing.refresh()
    assert failing.get_status() == JobStatus.FAILED
    assert "expected failure" in (failing.latest_result().exc_string or "")
    finished = FinishedJobRegistry(queue=queue)
    assert len(finished.get_job_ids()) >= 42, len(finished.get_job_ids())
    assert queue.count == 0 and high.count == 0

    # redis-py's Lock: acquire, extend and release are Lua scripts.
    counter_key = "locked-counter"
    connection.set(counter_key, 0)

    def bump(times):
        client = Redis(host="127.0.0.1", port=port)
        for _ in range(times):
            with client.lock("resource", timeout=5, blocking_timeout=10):
                value = int(client.get(counter_key))
                client.set(counter_key, value + 1)

    threads = [threading.Thread(target=bump, args=(50,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert int(connection.get(counter_key)) == 200, connection.get(counter_key)

    lock = connection.lock("extend-me", timeout=2)
    assert lock.acquire(blocking=False)
    assert not connection.lock("extend-me", timeout=2).acquire(blocking=False)
    assert lock.extend(10)
    assert connection.pttl("extend-me") > 9000
    lock.release()
    assert connection.exists("extend-me") == 0

    # A registered script, called after SCRIPT FLUSH: redis-py reloads it on NOSCRIPT.
    multiply = connection.register_script("return tonumber(ARGV[1]) * tonumber(ARGV[2])")
    assert multiply(args=[6, 7]) == 42
    connection.script_flush()
    assert multiply(args=[3, 5]) == 15

    print("ok")


if __name__ == "__main__":
    main()
