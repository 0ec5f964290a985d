"""ACL through redis-py's own API: users made with acl_setuser (redis-py writes the rules), connections that log in
with a username and password (AUTH user pass in RESP2, HELLO 3 AUTH in RESP3), every denial raising
NoPermissionError and writing nothing, ACL LOG/GETUSER/LIST/DRYRUN parsed by redis-py.

usage: redis_acl.py PORT RESP
"""

import sys

import redis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def main():
    port, resp = int(sys.argv[1]), int(sys.argv[2])
    extra = {"protocol": resp} if resp == 3 else {}
    admin = redis.Redis(port=port, decode_responses=True, **extra)
    admin.flushall()
    admin.acl_log_reset()

    # redis-py turns keyword arguments into rules.
    check(
        admin.acl_setuser(
            "app",
            enabled=True,
            passwords=["+app-secret"],
            categories=["+@read", "+@write", "-@dangerous"],
            commands=["-hset", "+ping", "+acl|whoami", "+multi", "+exec", "+publish"],
            keys=["app:*"],
            channels=["events.*"],
        ),
        "acl_setuser app",
    )
    check(admin.acl_setuser("reader", enabled=True, passwords=["+r"], categories=["+@read"], keys=["%R~*"]), "reader")
    user = admin.acl_getuser("app")
    check("on" in user["flags"], f"flags {user}")
    check(len(user["passwords"]) == 1, f"passwords {user}")
    check("app:*" in str(user["keys"]), f"keys {user}")
    check(sorted(admin.acl_users()) == ["app", "default", "reader"], admin.acl_users())
    check(any(line.startswith("user app on #") for line in admin.acl_list()), admin.acl_list())
    check("get" in admin.acl_cat("read"), "acl cat read")
    check(len(admin.acl_genpass()) == 64, "genpass")

    app = redis.Redis(port=port, username="app", password="app-secret", decode_responses=True, **extra)
    check(app.acl_whoami() == "app", "whoami")
    check(app.set("app:1", "v"), "allowed write")
    check(app.get("app:1") == "v", "allowed read")
    check(app.ping(), "ping")
    denied = [
        lambda: app.get("other"),
        lambda: app.set("other", "x"),
        lambda: app.hset("app:h", "f", "v"),
        lambda: app.flushall(),
        lambda: app.publish("other", "m"),
        lambda: app.config_get("maxmemory"),
    ]
    for attempt in denied:
        try:
            attempt()
        except NoPermissionError:
            continue
        raise AssertionError("a denied command ran")
    check(app.publish("events.a", "m") == 0, "allowed channel")
    pipe = app.pipeline(transaction=True)
    pipe.set("app:2", "x")
    pipe.get("other")
    try:
        pipe.execute()
        raise AssertionError("transaction with a denied command ran")
    except (ResponseError, NoPermissionError):
        pass

    reader = redis.Redis(port=port, username="reader", password="r", decode_responses=True, **extra)
    check(reader.get("app:1") == "v", "reader reads")
    try:
        reader.set("app:1", "w")
        raise AssertionError("reader wrote")
    except NoPermissionError:
        pass

    try:
        redis.Redis(port=port, username="app", password="wrong", **extra).ping()
        raise AssertionError("wrong password accepted")
    except AuthenticationError:
        pass

    # Nothing a denial refused was written; the log has the denials.
    check(admin.exists("other", "app:h", "app:2") == 0, "denied writes left nothing")
    check(admin.get("app:1") == "v", "reader's refused write")
    log = admin.acl_log()
    reasons = {(entry["reason"], entry["object"]) for entry in log}
    check(("key", "other") in reasons, f"log {log}")
    check(("command", "hset") in reasons, f"log {log}")
    check(("auth", "AUTH") in reasons or ("auth", "auth") in reasons or ("auth", "HELLO") in reasons
          or ("auth", "hello") in reasons, f"log {log}")
    check(admin.acl_dryrun("app", "get", "other").startswith("This user has no permissions"), "dryrun")
    check(admin.acl_dryrun("app", "get", "app:9") == "OK", "dryrun ok")

    # A deleted user's connections are closed.
    check(admin.acl_deluser("reader") == 1, "deluser")
    try:
        reader.get("app:1")
        reader.get("app:1")
        raise AssertionError("deleted user's connection still works")
    except (redis.ConnectionError, NoPermissionError, AuthenticationError, ResponseError):
        pass
    print("ok")


if __name__ == "__main__":
    main()
