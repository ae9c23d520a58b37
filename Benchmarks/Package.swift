// swift-tools-version: 6.1
// Micro-benchmarks, in a nested package (as swift-nio does it) so that the main package's build and
// CI never pay for the benchmark harness. Run: `cd Benchmarks && swift package --disable-sandbox benchmark`.
import PackageDescription

let package = Package(
    name: "tally-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // `name:` pins the identity to "tally" whatever the checkout's folder is called (a plain
        // `.package(path: "..")` takes its identity from the folder name, "main" here).
        .package(name: "tally", path: ".."),
        // ordo-one/benchmark (formerly package-benchmark; the old URL still resolves but warns). Only the
        // MallocInterposer trait: that drops the default RuntimeInterposer trait, and with it the
        // swift-runtime-interposer dependency it adds on Linux with Swift 6.3, which is not mirrored here
        // (it only serves retain/release metrics, which these benchmarks do not use).
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "IngestBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Metering", package: "tally"),
                .product(name: "Storage", package: "tally"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/IngestBenchmarks",
            swiftSettings: [
                .swiftLanguageMode(.v6),
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
