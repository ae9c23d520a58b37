// swift-tools-version: 6.1
import PackageDescription

/// Strict settings on every Tally target (as swift-log does it).
let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "tally",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tally", targets: ["tally"]),
        .library(name: "LMDB", targets: ["LMDB"]),
        .library(name: "Metering", targets: ["Metering"]),
        .library(name: "TallyConfiguration", targets: ["TallyConfiguration"]),
        .library(name: "Storage", targets: ["Storage"]),
        .library(name: "Ingest", targets: ["Ingest"]),
        .library(name: "IngestClient", targets: ["IngestClient"]),
        .library(name: "Zstd", targets: ["Zstd"]),
        .library(name: "Billing", targets: ["Billing"]),
        .library(name: "Limits", targets: ["Limits"]),
        .library(name: "Rating", targets: ["Rating"]),
        .library(name: "HTTPAPI", targets: ["HTTPAPI"]),
        .library(name: "UsageQuery", targets: ["UsageQuery"]),
        .library(name: "AlertDelivery", targets: ["AlertDelivery"]),
        .library(name: "Dashboard", targets: ["Dashboard"]),
        .library(name: "Credits", targets: ["Credits"]),
        .library(name: "NATS", targets: ["NATS"]),
        .library(name: "Cluster", targets: ["Cluster"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        // C libraries, reached through module maps and one shim header each (the GRDB way).
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CNATS", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),

        // 1. A generic LMDB wrapper: knows nothing of metering.
        .target(name: "LMDB", dependencies: ["CLMDB"], swiftSettings: strictSettings),
        // A generic NATS JetStream client over the C client (cnats): streams, publishes with
        // dedup ids and fences, reads by sequence, key-value buckets with compare-and-set. Knows
        // nothing of metering; the cluster mode is built on it.
        .target(name: "NATS", dependencies: ["CNATS"], swiftSettings: strictSettings),
        // zstd frames with checksums, for archived segments and backups.
        .target(name: "Zstd", dependencies: ["CZstd"], swiftSettings: strictSettings),
        // 2. Metering: the vocabulary every stage shares (events, meters, prices, exact decimals, periods).
        .target(name: "Metering", dependencies: [], swiftSettings: strictSettings),
        // TallyConfiguration: reading and validating tally.yaml (Yams) into the settings every stage
        // takes. Not `Configuration`: apple/swift-configuration, in the package graph, has that name.
        .target(
            name: "TallyConfiguration",
            dependencies: ["Metering", .product(name: "Yams", package: "Yams")],
            swiftSettings: strictSettings
        ),
        // Credits: prepaid grants and how a period's amount burns them down (pure; no I/O).
        .target(name: "Credits", dependencies: ["Metering"], swiftSettings: strictSettings),
        // 3. Storage: Tally's LMDB key layout.
        .target(
            name: "Storage",
            dependencies: [
                "LMDB", "Metering", "Zstd", "Credits",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // 4. Ingest: the group-commit writer thread and the Unix-socket server.
        .target(
            name: "Ingest",
            dependencies: [
                "TallyConfiguration", "Storage", "Metering",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // 6. Billing: estimates and batch rating runs over the store's usage.
        .target(
            name: "Billing",
            dependencies: ["TallyConfiguration", "Storage", "Metering", "Rating", "Credits"],
            swiftSettings: strictSettings
        ),
        // 7. Limits: which limits apply, and their evaluation inside each group commit.
        .target(
            name: "Limits",
            dependencies: ["TallyConfiguration", "Billing", "Rating", "Storage", "Metering"],
            swiftSettings: strictSettings
        ),
        // The producer side of the socket protocol: `tally send` and `tally bench`.
        .target(name: "IngestClient", dependencies: [], swiftSettings: strictSettings),
        // Rating: price × quantity → amount with a breakdown. Pure functions, no I/O.
        .target(name: "Rating", dependencies: ["Metering"], swiftSettings: strictSettings),
        // The HTTP API (DESIGN §9): Hummingbird routes over the store and the group-commit writer.
        // Usage over time: windowed queries (hour, day, month in a time zone) over the stored buckets.
        .target(name: "UsageQuery", dependencies: ["Storage", "Metering"], swiftSettings: strictSettings),

        .target(
            name: "HTTPAPI",
            dependencies: [
                "TallyConfiguration", "Ingest", "Limits", "Billing", "Storage", "Metering", "UsageQuery", "Credits",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The web dashboard (/ui) and the customer usage page (/portal): HTML and SVG rendered on
        // the server, served by the HTTP API's server.
        .target(
            name: "Dashboard",
            dependencies: [
                "TallyConfiguration", "HTTPAPI", "Limits", "Billing", "Rating", "Storage", "Metering", "UsageQuery",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Cluster mode on NATS JetStream: partitions, their leases, the replicated event log.
        .target(
            name: "Cluster",
            dependencies: [
                "NATS", "Ingest", "Storage", "Metering", "TallyConfiguration",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // Alert delivery: the outbox to the NDJSON alert log and to webhooks, each from its own cursor.
        .target(
            name: "AlertDelivery",
            dependencies: [
                "TallyConfiguration", "Storage", "Metering",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The `tally` command on top.
        .executableTarget(
            name: "tally",
            dependencies: [
                "TallyConfiguration", "Ingest", "IngestClient", "Limits", "Billing", "Rating", "Storage", "Metering", "LMDB",
                "HTTPAPI", "AlertDelivery", "UsageQuery", "Dashboard", "Credits", "Cluster", "NATS",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),

        .testTarget(name: "LMDBTests", dependencies: ["LMDB"], swiftSettings: strictSettings),
        .testTarget(name: "ZstdTests", dependencies: ["Zstd"], swiftSettings: strictSettings),
        // Real nats-server processes (one, or a JetStream cluster) for the NATS and cluster tests.
        .target(name: "NATSTestSupport", path: "Tests/NATSTestSupport", swiftSettings: strictSettings),
        .testTarget(name: "NATSTests", dependencies: ["NATS", "NATSTestSupport"], swiftSettings: strictSettings),
        .testTarget(
            name: "ClusterTests",
            dependencies: ["Cluster", "NATS", "NATSTestSupport", "Storage", "Metering", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "BillingTests", dependencies: ["Billing", "Limits", "Credits", "TallyConfiguration", "Rating", "Storage", "Metering"], swiftSettings: strictSettings),
        .testTarget(name: "MeteringTests", dependencies: ["Metering"], swiftSettings: strictSettings),
        .testTarget(name: "TallyConfigurationTests", dependencies: ["TallyConfiguration", "Metering"], swiftSettings: strictSettings),
        .testTarget(
            name: "RatingTests",
            dependencies: ["Rating", "TallyConfiguration", "Metering", .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "LMDB", "Metering"], swiftSettings: strictSettings),
        .testTarget(name: "CreditsTests", dependencies: ["Credits", "Metering"], swiftSettings: strictSettings),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "Metering", "Rating"], swiftSettings: strictSettings),
        .testTarget(name: "UsageQueryTests", dependencies: ["UsageQuery", "Storage", "Metering"], swiftSettings: strictSettings),
        .testTarget(
            name: "IngestTests",
            dependencies: [
                "TallyConfiguration", "Ingest", "IngestClient", "Storage", "Metering", "tally", "Cluster", "NATSTestSupport",
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "HTTPAPITests",
            dependencies: [
                "TallyConfiguration", "HTTPAPI", "Billing", "Ingest", "Limits", "Storage", "Metering",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "AlertDeliveryTests",
            dependencies: [
                "TallyConfiguration", "AlertDelivery", "Storage", "Metering",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
