#!/usr/bin/env python3
"""Generates Protocols/Redis/Server/Commands/RedisCommandSpec+Table.swift from Redis 7.0's command JSON files.

Usage: scripts/gen-redis-commands.py [dir with *.json]
       (default: Protocols/Redis/Spec/commands, Redis 7.0.15's src/commands kept in the repository)

The output is committed; run this only when the reference changes. It holds, per command and subcommand, what
dispatch needs (arity, flags, key positions) as Swift literals, and the complete COMMAND INFO and COMMAND DOCS
replies as a compact tagged JSON string that StrataRedis decodes on first use.
"""
import glob
import json
import os
import sys

COMMAND_FLAGS = [  # Redis's order in COMMAND INFO; hidden ones last (not shown)
    ("WRITE", "write"), ("READONLY", "readonly"), ("DENYOOM", "denyoom"), ("MODULE", "module"),
    ("ADMIN", "admin"), ("PUBSUB", "pubsub"), ("NOSCRIPT", "noscript"), ("BLOCKING", "blocking"),
    ("LOADING", "loading"), ("STALE", "stale"), ("SKIP_MONITOR", "skip_monitor"),
    ("SKIP_SLOWLOG", "skip_slowlog"), ("ASKING", "asking"), ("FAST", "fast"), ("NO_AUTH", "no_auth"),
    ("NO_MANDATORY_KEYS", "no_mandatory_keys"), ("NO_ASYNC_LOADING", "no_async_loading"),
    ("NO_MULTI", "no_multi"), ("MOVABLE_KEYS", "movablekeys"), ("ALLOW_BUSY", "allow_busy"),
    ("MAY_REPLICATE", None), ("SENTINEL", None), ("ONLY_SENTINEL", None), ("PROTECTED", None),
    ("TOUCHES_ARBITRARY_KEYS", None),
]
FLAG_BITS = {name: i for i, (name, _) in enumerate(COMMAND_FLAGS)}
ACL_ORDER = ["keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog",
             "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection",
             "transaction", "scripting"]
KEY_FLAGS = [("RO", "RO"), ("RW", "RW"), ("OW", "OW"), ("RM", "RM"), ("ACCESS", "access"), ("UPDATE", "update"),
             ("INSERT", "insert"), ("DELETE", "delete"), ("NOT_KEY", "not_key"), ("INCOMPLETE", "incomplete"),
             ("VARIABLE_FLAGS", "variable_flags")]
GROUPS = {"sorted_set": "sorted-set", "transactions": "transactions"}


def status(text):
    return {"+": text}


def rset(items):
    return {"s": items}


def rarray(items):
    return {"a": items}


def rmap(pairs):
    flat = []
    for k, v in pairs:
        flat += [k, v]
    return {"m": flat}


def acl_categories(c):
    cats = {a.lower() for a in c.get("acl_categories", [])}
    flags = set(c.get("command_flags", []))
    if "WRITE" in flags:
        cats.add("write")
    if "READONLY" in flags and "scripting" not in cats:
        cats.add("read")
    if "ADMIN" in flags:
        cats |= {"admin", "dangerous"}
    if "PUBSUB" in flags:
        cats.add("pubsub")
    if "FAST" in flags:
        cats.add("fast")
    if "BLOCKING" in flags:
        cats.add("blocking")
    if "fast" not in cats:
        cats.add("slow")
    return [c for c in ACL_ORDER if c in cats]


def legacy_range(c, flags):
    """(first, last, step) as COMMAND INFO shows them, and whether the command has movable keys."""
    specs = c.get("key_specs", [])
    movable = False
    if not specs:
        return (0, 0, 0), movable

    def is_range(s):
        return "index" in s["begin_search"] and "range" in s["find_keys"]

    if len(specs) == 1 and is_range(specs[0]):
        s = specs[0]
        if "INCOMPLETE" in s.get("flags", []):
            movable = True
        first = s["begin_search"]["index"]["pos"]
        last = s["find_keys"]["range"]["lastkey"]
        return (first, last + first if last >= 0 else last, s["find_keys"]["range"]["step"]), movable
    first, last, prev_last = None, 0, 0
    for s in specs:
        if not is_range(s):
            movable = True
            continue
        pos = s["begin_search"]["index"]["pos"]
        rng = s["find_keys"]["range"]
        if rng["step"] != 1 or (prev_last and prev_last != pos - 1):
            movable = True
            continue
        if "INCOMPLETE" in s.get("flags", []):
            movable = True
        first = pos if first is None else min(first, pos)
        abs_last = rng["lastkey"] + pos if rng["lastkey"] >= 0 else rng["lastkey"]
        last = max(last & 0xFFFFFFFF, abs_last & 0xFFFFFFFF)
        last = last - (1 << 32) if last >= (1 << 31) else last
        prev_last = last
    if first is None:
        return (0, 0, 0), True
    rel = last if last < 0 else last - first
    return (first, rel + first if rel >= 0 else rel, 1), movable


def key_spec_tree(s):
    pairs = []
    if "notes" in s:
        pairs.append(("notes", s["notes"]))
    pairs.append(("flags", rset([status(n) for f, n in KEY_FLAGS if f in s.get("flags", [])])))
    bs = s["begin_search"]
    if "index" in bs:
        begin = rmap([("type", "index"), ("spec", rmap([("index", bs["index"]["pos"])]))])
    elif "keyword" in bs:
        begin = rmap([("type", "keyword"), ("spec", rmap([("keyword", bs["keyword"]["keyword"]),
                                                          ("startfrom", bs["keyword"]["startfrom"])]))])
    else:
        begin = rmap([("type", "unknown"), ("spec", rmap([]))])
    pairs.append(("begin_search", begin))
    fk = s["find_keys"]
    if "range" in fk:
        find = rmap([("type", "range"), ("spec", rmap([("lastkey", fk["range"]["lastkey"]),
                                                       ("keystep", fk["range"]["step"]),
                                                       ("limit", fk["range"]["limit"])]))])
    elif "keynum" in fk:
        find = rmap([("type", "keynum"), ("spec", rmap([("keynumidx", fk["keynum"]["keynumidx"]),
                                                        ("firstkey", fk["keynum"]["firstkey"]),
                                                        ("keystep", fk["keynum"]["step"])]))])
    else:
        find = rmap([("type", "unknown"), ("spec", rmap([]))])
    pairs.append(("find_keys", find))
    return rmap(pairs)


def info_tree(full, c, subs):
    flags = set(c.get("command_flags", []))
    (first, last, step), movable = legacy_range(c, flags)
    if movable:
        flags.add("MOVABLE_KEYS")
    return rarray([
        full, c["arity"],
        rset([status(n) for f, n in COMMAND_FLAGS if n and f in flags]),
        first, last, step,
        rset([status("@" + a) for a in acl_categories(c)]),
        rset(c.get("command_tips", [])),
        rset([key_spec_tree(s) for s in c.get("key_specs", [])]),
        rarray([t for _, t in subs]) if subs else rset([]),
    ]), flags, (first, last, step)


def arg_tree(a):
    pairs = [("name", a["name"]), ("type", a["type"])]
    if "key_spec_index" in a:
        pairs.append(("key_spec_index", a["key_spec_index"]))
    if "token" in a:
        pairs.append(("token", a["token"]))
    if "summary" in a:
        pairs.append(("summary", a["summary"]))
    if "since" in a:
        pairs.append(("since", a["since"]))
    if "deprecated_since" in a:
        pairs.append(("deprecated_since", a["deprecated_since"]))
    arg_flags = [n for f, n in [("optional", "optional"), ("multiple", "multiple"),
                                ("multiple_token", "multiple_token")] if a.get(f)]
    if arg_flags:
        pairs.append(("flags", rset([status(n) for n in arg_flags])))
    if a["type"] in ("oneof", "block"):
        pairs.append(("arguments", rarray([arg_tree(x) for x in a.get("arguments", [])])))
    return rmap(pairs)


def docs_tree(c, subs):
    pairs = []
    pairs.append(("summary", c["summary"]))
    pairs.append(("since", c["since"]))
    pairs.append(("group", GROUPS.get(c["group"], c["group"])))
    if "complexity" in c:
        pairs.append(("complexity", c["complexity"]))
    if c.get("doc_flags"):
        pairs.append(("doc_flags", rset([status(f.lower()) for f in ["DEPRECATED", "SYSCMD"]
                                         if f in c["doc_flags"]])))
    if "deprecated_since" in c:
        pairs.append(("deprecated_since", c["deprecated_since"]))
    if "replaced_by" in c:
        pairs.append(("replaced_by", c["replaced_by"]))
    if "history" in c:
        pairs.append(("history", rset([rarray([v, ch]) for v, ch in c["history"]])))
    if "arguments" in c:
        pairs.append(("arguments", rarray([arg_tree(a) for a in c["arguments"]])))
    if subs:
        flat = []
        for name, tree in subs:
            flat += [name, tree]
        pairs.append(("subcommands", {"m": flat}))
    return rmap(pairs)


def swift_string(text):
    return json.dumps(text)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    source = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "Protocols/Redis/Spec/commands")
    commands = {}
    for path in sorted(glob.glob(os.path.join(source, "*.json"))):
        for name, c in json.load(open(path)).items():
            container = c.get("container")
            full = (container.lower() + "|" + name.lower()) if container else name.lower()
            commands[full] = (name, c)
    tops = sorted(k for k in commands if "|" not in k)
    rows = []
    infos = {}
    docs = {}
    for top in tops:
        name, c = commands[top]
        sub_names = sorted(k for k in commands if k.startswith(top + "|"))
        sub_info, sub_docs = [], []
        for sub in sub_names:
            sname, sc = commands[sub]
            tree, flags, rng = info_tree(sub, sc, [])
            sub_info.append((sub, tree))
            sub_docs.append((sub, docs_tree(sc, [])))
            rows.append((sub, sc, flags, rng))
        tree, flags, rng = info_tree(top, c, sub_info)
        infos[top] = tree
        docs[top] = docs_tree(c, sub_docs)
        for sub, t in sub_info:
            infos[sub] = t
        for sub, t in sub_docs:
            docs[sub] = t
        rows.insert(len(rows) - len(sub_names), (top, c, flags, rng))

    out = []
    out.append("// swift-format-ignore-file")
    out.append("// Generated by scripts/gen-redis-commands.py from Redis 7.0.15's src/commands/*.json. Do not edit.")
    out.append("")
    out.append("extension RedisCommandSpec {")
    out.append("    /// Every command and subcommand of Redis 7.0 (sentinel-only ones included, as the reference lists them).")
    out.append("    static let all: [RedisCommandSpec] = [")
    for full, c, flags, (first, last, step) in rows:
        bits = 0
        for f in flags:
            if f in FLAG_BITS:
                bits |= 1 << FLAG_BITS[f]
        group = GROUPS.get(c["group"], c["group"])
        out.append(f"        RedisCommandSpec(name: {swift_string(full)}, arity: {c['arity']}, flags: "
                   f"RedisCommandFlags(rawValue: 0x{bits:x}), firstKey: {first}, lastKey: {last}, keyStep: {step}, "
                   f"group: {swift_string(group)}),")
    out.append("    ]")
    out.append("")
    out.append("    /// COMMAND INFO and COMMAND DOCS replies, by full name, in the tagged form RedisCommandDocs decodes.")
    payload = json.dumps({"info": infos, "docs": docs}, separators=(",", ":"), sort_keys=True)
    out.append("    static let replies = #\"\"\"")
    # Wrap the one-line JSON so the file stays readable in diffs.
    for i in range(0, len(payload), 110):
        out.append(payload[i:i + 110] + "\\#")
    out.append("\"\"\"#")
    out.append("}")
    target = os.path.join(os.path.dirname(__file__), "..", "Protocols", "Redis", "Server", "Commands",
                          "RedisCommandSpec+Table.swift")
    with open(target, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {len(rows)} commands to {os.path.relpath(target)}")


if __name__ == "__main__":
    main()
