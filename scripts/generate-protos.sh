#!/usr/bin/env bash
# Regenerates Protocols/Etcd/API from the trimmed protos in Protocols/Etcd/Protos with Debian's protoc and the two
# Swift plugins built from this package's own dependencies (never the SwiftPM build plugins, which compile protoc).
# The output is committed; run this only when the protos or the generator versions change.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || scripts/apt-install.sh protobuf-compiler
swift build -c release --product protoc-gen-swift
swift build -c release --product protoc-gen-grpc-swift-2
bin="$(swift build -c release --show-bin-path)"
protos=Protocols/Etcd/Protos
out=Protocols/Etcd/API
files=(etcd/api/mvccpb/kv.proto etcd/api/authpb/auth.proto etcd/api/etcdserverpb/rpc.proto grpc/health/v1/health.proto)
rm -f "$out"/*.pb.swift "$out"/*.grpc.swift
protoc -I "$protos" \
  --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
  --swift_out="$out" \
  --swift_opt=Visibility=Package --swift_opt=UseAccessLevelOnImports=true \
  --swift_opt=FileNaming=PathToUnderscores \
  "${files[@]}"
protoc -I "$protos" \
  --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" \
  --grpc-swift-2_out="$out" \
  --grpc-swift-2_opt=Visibility=Package --grpc-swift-2_opt=UseAccessLevelOnImports=true \
  --grpc-swift-2_opt=Server=true --grpc-swift-2_opt=Client=true \
  --grpc-swift-2_opt=FileNaming=PathToUnderscores \
  etcd/api/etcdserverpb/rpc.proto grpc/health/v1/health.proto
ls -l "$out"
