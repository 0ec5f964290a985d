#!/usr/bin/env python3
"""Every Swift file of a Strata target may import only the target's declared dependencies (plus the toolchain's
system modules). SwiftPM's --explicit-target-dependency-import-check does nothing for this package's native builds
on Linux, so this checks it from `swift package dump-package`: a front-end cannot reach the RocksDB handle (or
another front-end) through a dependency of a dependency, and the core cannot import a front-end."""
import json
import os
import re
import subprocess
import sys

SYSTEM = {
    "Foundation", "FoundationEssentials", "Glibc", "Dispatch", "Synchronization", "Testing", "XCTest",
    "_Concurrency", "Swift", "Darwin", "os", "PackageDescription",
}
IMPORT = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|private|fileprivate)\s+)?import\s+"
                    r"(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)")

# Product name -> the modules it gives access to (products of this package's dependencies that re-export several).
PRODUCT_MODULES = {
    "NIOHTTP2": {"NIOHTTP2"}, "NIOHPACK": {"NIOHPACK"},
}


def main() -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    manifest = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=root, check=True,
                                         capture_output=True, text=True).stdout)
    problems = []
    for target in manifest["targets"]:
        if target["type"] in ("system", "binary", "plugin"):
            continue
        allowed = set(SYSTEM) | {target["name"]}
        for dependency in target["dependencies"]:
            kind, value = next(iter(dependency.items()))
            name = value[0]
            allowed.add(name)
            allowed |= PRODUCT_MODULES.get(name, set())
        path = os.path.join(root, target.get("path") or "")
        for directory, _, files in os.walk(path):
            for file in files:
                if not file.endswith(".swift"):
                    continue
                full = os.path.join(directory, file)
                with open(full, encoding="utf-8") as handle:
                    for number, line in enumerate(handle, 1):
                        match = IMPORT.match(line)
                        if match and match.group(1) not in allowed:
                            problems.append(f"{os.path.relpath(full, root)}:{number}: {target['name']} imports "
                                            f"{match.group(1)}, which is not among its dependencies in Package.swift")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
