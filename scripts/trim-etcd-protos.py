#!/usr/bin/env python3
"""Copies etcd's .proto files into Protocols/Etcd/Protos, trimmed to what Debian's protoc can compile alone.

Removed: the grpc-gateway HTTP annotations, the OpenAPI options, the versionpb import with its message, field and
enum-value options, and gogoproto options. Package names, messages, fields and services stay byte-identical, so the
gRPC method paths are etcd's (/etcdserverpb.KV/Range). Run by hand when updating the protos:

    scripts/trim-etcd-protos.py <dir containing etcd/api/...> Protocols/Etcd/Protos
"""
import os
import re
import sys

FILES = ["etcd/api/mvccpb/kv.proto", "etcd/api/authpb/auth.proto", "etcd/api/etcdserverpb/rpc.proto"]
DROP_IMPORTS = ("versionpb/", "google/api/", "protoc-gen-openapiv2/", "gogoproto/")
OPTION_MARKERS = ("versionpb.", "google.api.http", "openapiv2", "gogoproto.")


def strip_option_blocks(text):
    """Removes `option (x) = { ... };` and `option (x) = "...";` statements for the markers above."""
    out = []
    i = 0
    while i < len(text):
        match = re.compile(r"option\s*\(([^)]*)\)\s*=\s*").search(text, i)
        if not match:
            out.append(text[i:])
            break
        if not any(m in match.group(1) for m in OPTION_MARKERS):
            out.append(text[i:match.end()])
            i = match.end()
            continue
        start = text.rfind("\n", 0, match.start()) + 1
        if text[start:match.start()].strip():
            start = match.start()
        out.append(text[i:start])
        j = match.end()
        if text[j] == "{":
            depth = 0
            while True:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            j += 1
        else:
            while text[j] != ";":
                j += 1
        while j < len(text) and text[j] in " \t;":
            j += 1
        if j < len(text) and text[j] == "\n":
            j += 1
        i = j
    return "".join(out)


def strip_field_options(text):
    """Removes `[ ... ]` option lists on fields and enum values that only carry the dropped options."""
    def replace(match):
        inner = match.group(1)
        parts = [p.strip() for p in inner.split(",")]
        kept = [p for p in parts if not any(m in p for m in OPTION_MARKERS)]
        return " [" + ", ".join(kept) + "]" if kept else ""
    return re.sub(r"\s*\[([^\]\n]*)\]", replace, text)


def trim(text):
    lines = [l for l in text.split("\n") if not (l.startswith("import ") and any(d in l for d in DROP_IMPORTS))]
    text = "\n".join(lines)
    text = strip_option_blocks(text)
    text = strip_field_options(text)
    # rpc bodies left empty by removing their HTTP option: `rpc X(A) returns (B) {\n  }` -> `rpc X(A) returns (B) {}`
    text = re.sub(r"\{\s*\}", "{}", text)
    return text


def main():
    source, destination = sys.argv[1], sys.argv[2]
    for name in FILES:
        with open(os.path.join(source, name)) as f:
            text = f.read()
        trimmed = trim(text)
        leftover = [m for m in OPTION_MARKERS if m in trimmed]
        if leftover:
            sys.exit(f"{name}: could not remove {leftover}")
        path = os.path.join(destination, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("// Trimmed copy of etcd's " + name + " (scripts/trim-etcd-protos.py): gateway, OpenAPI,\n"
                    "// versionpb and gogoproto options removed; everything else unchanged. Apache-2.0, etcd authors.\n"
                    + trimmed)
        print("wrote", path)


if __name__ == "__main__":
    main()
