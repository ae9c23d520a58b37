// swift-tools-version: 6.1
// libFuzzer targets, in a nested package (like Benchmarks/) so that the main package's build and
// tests never pay for them. Each target is one executable whose `LLVMFuzzerTestOneInput` libFuzzer
// calls; libFuzzer supplies `main`. Build and run them with `make fuzz` (see docs/FUZZING.md):
//
//     swift build --package-path Fuzz -j 1 -Xswiftc -sanitize=fuzzer,address
//     Fuzz/.build/debug/FuzzEventLine Fuzz/Corpus/FuzzEventLine -max_total_time=60
//
// `-sanitize=fuzzer,address` goes through `-Xswiftc` so that every Swift module, Tally's libraries
// included, carries libFuzzer's coverage counters and AddressSanitizer (the C libraries do not).
import PackageDescription

/// The same strict settings as the main package.
let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]
/// For the targets, `-parse-as-library` too: they have no top-level code; libFuzzer's driver calls them.
let fuzzSettings: [SwiftSetting] = strictSettings + [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "tally-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        // `name:` pins the identity to "tally" whatever the checkout's folder is called.
        .package(name: "tally", path: ".."),
    ],
    targets: [
        // libFuzzer's `LLVMFuzzerRunDriver`, declared for Swift.
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], swiftSettings: strictSettings),
        .executableTarget(
            name: "FuzzEventLine",
            dependencies: ["FuzzSupport", .product(name: "Metering", package: "tally")],
            swiftSettings: fuzzSettings
        ),
        .executableTarget(
            name: "FuzzJSONScanner",
            dependencies: ["FuzzSupport", .product(name: "Metering", package: "tally")],
            swiftSettings: fuzzSettings
        ),
        .executableTarget(
            name: "FuzzDecimal",
            dependencies: ["FuzzSupport", .product(name: "Metering", package: "tally")],
            swiftSettings: fuzzSettings
        ),
        .executableTarget(
            name: "FuzzConfig",
            dependencies: [
                "FuzzSupport",
                .product(name: "TallyConfiguration", package: "tally"),
                .product(name: "Metering", package: "tally"),
            ],
            swiftSettings: fuzzSettings
        ),
        .executableTarget(
            name: "FuzzSegment",
            dependencies: [
                "FuzzSupport",
                .product(name: "Storage", package: "tally"),
                .product(name: "Metering", package: "tally"),
                .product(name: "Zstd", package: "tally"),
            ],
            swiftSettings: fuzzSettings
        ),
        .executableTarget(
            name: "FuzzBackupManifest",
            dependencies: [
                "FuzzSupport",
                .product(name: "Storage", package: "tally"),
                .product(name: "Metering", package: "tally"),
            ],
            swiftSettings: fuzzSettings
        ),
    ]
)
