// swift-tools-version:6.2
import PackageDescription

// Every Strata target uses the same settings: Swift 6 language mode plus the upcoming features the
// anchors (grpc-swift-2, hummingbird) turn on, so access levels on imports are explicit.
let strataSwiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    // CI's bar, and every build's: a warning in Strata's own code fails the build (dependencies are not affected).
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

// -----------------------------------------------------------------------------------------------
// Dependencies

let dependencies: [Package.Dependency] = [
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
    .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
]

// -----------------------------------------------------------------------------------------------
// Storage: the RocksDB binding (C shim + safe wrapper).

let storageTargets: [Target] = [
    // Headers only: the library is linked by StrataRocksDB below (no pkg-config, whose `-lrocksdb` would pick the
    // shared library).
    .systemLibrary(
        name: "CRocksDB",
        path: "Storage/CRocksDB",
        providers: [.apt(["librocksdb-dev"])]
    ),
    // C++ over RocksDB's C++ API, for what its C API cannot do (an info logger that survives a full disk).
    .target(
        name: "CRocksDBShim",
        dependencies: ["CRocksDB"],
        path: "Storage/CRocksDBShim"
    ),
    .target(
        name: "StrataRocksDB",
        dependencies: ["CRocksDB", "CRocksDBShim"],
        path: "Storage/RocksDB",
        swiftSettings: strataSwiftSettings,
        // RocksDB is linked statically (Debian's librocksdb.a): the shared library kept ~9 MiB of its 11 MiB
        // resident (the kernel's fault-around over code its static initializers touch everywhere); linked in,
        // unreferenced objects are dropped and the code a server runs shares pages with Strata's (the release
        // link's order, scripts/strata.order, names RocksDB's functions too). lld, because it resolves an archive
        // named before the objects that use it. The compression libraries and the C++ runtime stay shared.
        linkerSettings: [
            .unsafeFlags(["-use-ld=lld", "-Xlinker", "-l:librocksdb.a"], .when(platforms: [.linux])),
            .linkedLibrary("snappy"), .linkedLibrary("lz4"), .linkedLibrary("zstd"), .linkedLibrary("z"),
            .linkedLibrary("bz2"), .linkedLibrary("stdc++"),
        ]
    ),
    .target(
        name: "StrataLease",
        path: "Storage/Lease",
        swiftSettings: strataSwiftSettings
    ),
    .target(
        name: "StrataMVCC",
        dependencies: [
            "StrataRocksDB",
            "StrataLease",
            "StrataCommon",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ],
        path: "Storage/MVCC",
        swiftSettings: strataSwiftSettings
    ),
]

// -----------------------------------------------------------------------------------------------
// Protocol front-ends (Protocols/<Name>). Generated code is its own target.

let protocolTargets: [Target] = [
    .target(
        name: "StrataEtcdAPI",
        dependencies: [
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "Protocols/Etcd/API",
        swiftSettings: strataSwiftSettings
    ),
    .target(
        name: "StrataRedisStore",
        dependencies: ["StrataMVCC"],
        path: "Protocols/Redis/Store",
        swiftSettings: strataSwiftSettings
    ),
    // Lua 5.1 (Debian's liblua5.1, with its cjson and bit modules) for Redis scripting, behind a C shim: Lua raises
    // errors with longjmp, which must never cross a Swift frame.
    .target(
        name: "CStrataLua",
        path: "Protocols/Redis/CStrataLua",
        linkerSettings: [
            .linkedLibrary("lua5.1"), .linkedLibrary("lua5.1-cjson"), .linkedLibrary("lua5.1-bitop"),
            .linkedLibrary("m"),
        ]
    ),
    .target(
        name: "StrataRedis",
        dependencies: [
            "CStrataLua",
            "StrataRedisStore",
            "StrataMVCC",
            "StrataCommon",
            "StrataFrontEnd",
            "StrataObservability",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ],
        path: "Protocols/Redis/Server",
        swiftSettings: strataSwiftSettings
    ),
    // zlib, snappy and zstd headers for reading Avro manifests (their libraries are RocksDB's too).
    .systemLibrary(
        name: "CCompression",
        path: "Protocols/Iceberg/CCompression",
        providers: [.apt(["zlib1g-dev", "libsnappy-dev", "libzstd-dev"])]
    ),
    .target(
        name: "StrataIceberg",
        dependencies: [
            "CCompression",
            "StrataMVCC",
            "StrataCommon",
            "StrataFrontEnd",
            "StrataObservability",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ],
        path: "Protocols/Iceberg",
        exclude: ["CCompression"],
        swiftSettings: strataSwiftSettings
    ),
    .target(
        name: "StrataEtcd",
        dependencies: [
            "StrataEtcdAPI",
            "StrataMVCC",
            "StrataLease",
            "StrataCommon",
            "StrataFrontEnd",
            "StrataObservability",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            .product(name: "NIOHPACK", package: "swift-nio-http2"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ],
        path: "Protocols/Etcd/Server",
        swiftSettings: strataSwiftSettings
    ),
]

// -----------------------------------------------------------------------------------------------
// Shared subsystems, composition root and the executable.

let sourceTargets: [Target] = [
    .target(
        name: "StrataCommon",
        path: "Sources/StrataCommon",
        swiftSettings: strataSwiftSettings
    ),
    .target(
        name: "StrataObservability",
        dependencies: [
            "StrataCommon",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ],
        path: "Sources/StrataObservability",
        swiftSettings: strataSwiftSettings
    ),
    .target(
        name: "StrataFrontEnd",
        dependencies: [
            "StrataCommon",
            "StrataMVCC",
            "StrataObservability",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ],
        path: "Sources/StrataFrontEnd",
        swiftSettings: strataSwiftSettings
    ),
    .target(
        name: "StrataConfig",
        dependencies: [
            "StrataCommon",
            "StrataRocksDB",
            "StrataMVCC",
            "StrataObservability",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "TOMLKit", package: "TOMLKit"),
        ],
        path: "Sources/StrataConfig",
        swiftSettings: strataSwiftSettings
    ),
    .target(
        name: "StrataServer",
        dependencies: [
            "StrataCommon",
            "StrataConfig",
            "StrataObservability",
            "StrataRocksDB",
            "StrataMVCC",
            "StrataLease",
            "StrataFrontEnd",
            "StrataEtcd",
            "StrataRedis",
            "StrataIceberg",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ],
        path: "Sources/StrataServer",
        swiftSettings: strataSwiftSettings
    ),
    .executableTarget(
        name: "strata",
        dependencies: [
            "StrataCommon",
            "StrataConfig",
            "StrataServer",
            "StrataFrontEnd",
            "StrataMVCC",
            "StrataObservability",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ],
        path: "Sources/strata",
        swiftSettings: strataSwiftSettings,
        // Release: lld (shipped with the toolchain) with packed relative relocations (DT_RELR, glibc >= 2.36) and
        // without exporting every Swift symbol dynamically, so neither table is read at load time (5 MiB less
        // resident); and the functions a running server executes placed first (scripts/strata.order, recorded by
        // scripts/symbol-order.sh; `make` compiles with -function-sections so each can move), so the code it touches
        // is a few contiguous MiB, not pages scattered over the whole text (8 MiB less; docs/benchmarks.md).
        linkerSettings: [
            .unsafeFlags(
                [
                    "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker",
                    "--no-export-dynamic", "-Xlinker",
                    "--symbol-ordering-file=\(Context.packageDirectory)/scripts/strata.order", "-Xlinker",
                    "--no-warn-symbol-ordering",
                ],
                .when(platforms: [.linux], configuration: .release)
            )
        ]
    ),
]

// -----------------------------------------------------------------------------------------------
// Benchmarks (`make bench`): plain executables, so ordinary builds stay light.

let benchTargets: [Target] = [
    .executableTarget(
        name: "StrataBench",
        dependencies: ["StrataMVCC", "StrataRocksDB", "StrataLease"],
        path: "Bench/StrataBench",
        swiftSettings: strataSwiftSettings
    ),
    .executableTarget(
        name: "StrataEtcdBench",
        dependencies: [
            "StrataEtcdAPI",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "Bench/EtcdBench",
        swiftSettings: strataSwiftSettings
    ),
    // The Iceberg catalog's load generator: plain sockets, no dependencies.
    .executableTarget(
        name: "StrataIcebergBench",
        path: "Bench/IcebergBench",
        swiftSettings: strataSwiftSettings
    ),
]

// -----------------------------------------------------------------------------------------------
// Tests. `StrataTestSupport` is a regular target (temp dirs, free ports, spawning the binary).

let testTargets: [Target] = [
    .target(
        name: "StrataTestSupport",
        dependencies: ["StrataCommon", "StrataMVCC", "StrataRocksDB", "StrataLease"],
        path: "Tests/StrataTestSupport",
        swiftSettings: strataSwiftSettings
    ),
    .testTarget(
        name: "StrataRocksDBTests",
        dependencies: ["StrataRocksDB", "StrataTestSupport"],
        path: "Tests/StrataRocksDBTests",
        swiftSettings: strataSwiftSettings
    ),
    .executableTarget(
        name: "StrataCrashWriter",
        dependencies: ["StrataMVCC", "StrataRocksDB", "StrataLease", "StrataTestSupport"],
        path: "Tests/StrataCrashWriter",
        swiftSettings: strataSwiftSettings
    ),
    .testTarget(
        name: "StrataMVCCTests",
        dependencies: ["StrataMVCC", "StrataLease", "StrataRocksDB", "StrataTestSupport", "StrataCrashWriter"],
        path: "Tests/StrataMVCCTests",
        swiftSettings: strataSwiftSettings
    ),
    .testTarget(
        name: "StrataEtcdTests",
        dependencies: [
            "strata", "StrataTestSupport", "StrataEtcdAPI", "StrataEtcd", "StrataMVCC", "StrataRocksDB", "StrataLease",
            "StrataFrontEnd", "StrataCommon",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "Tests/StrataEtcdTests",
        swiftSettings: strataSwiftSettings
    ),
    .testTarget(
        name: "StrataRedisTests",
        dependencies: [
            "strata", "StrataTestSupport", "StrataRedis", "StrataRedisStore", "StrataMVCC", "StrataCommon",
            "StrataLease",
            .product(name: "NIOCore", package: "swift-nio"),
        ],
        path: "Tests/StrataRedisTests",
        swiftSettings: strataSwiftSettings
    ),
    .testTarget(
        name: "StrataIcebergTests",
        dependencies: ["strata", "StrataTestSupport", "StrataIceberg", "StrataMVCC", "StrataCommon"],
        path: "Tests/StrataIcebergTests",
        swiftSettings: strataSwiftSettings
    ),
    .testTarget(
        name: "StrataConfigTests",
        dependencies: [
            "StrataConfig", "StrataRocksDB", "StrataObservability", "StrataCommon", "StrataTestSupport", "StrataServer",
            "StrataEtcd", "StrataMVCC", "StrataFrontEnd", .product(name: "Logging", package: "swift-log"),
        ],
        path: "Tests/StrataConfigTests",
        swiftSettings: strataSwiftSettings
    ),
    .testTarget(
        name: "StrataServerTests",
        dependencies: [
            "strata", "StrataServer", "StrataConfig", "StrataCommon", "StrataRocksDB", "StrataObservability",
            "StrataTestSupport", .product(name: "Logging", package: "swift-log"),
        ],
        path: "Tests/StrataServerTests",
        swiftSettings: strataSwiftSettings
    ),
]

let package = Package(
    name: "strata",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "strata", targets: ["strata"])
    ],
    dependencies: dependencies,
    targets: storageTargets + protocolTargets + sourceTargets + benchTargets + testTargets,
    cxxLanguageStandard: .cxx17
)
