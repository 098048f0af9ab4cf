// swift-tools-version:6.2
import PackageDescription

// Every target gets the same settings: Swift 6 mode is the package default; these keep the code
// ready for the next language mode.
let swiftSettings: [SwiftSetting] = [
    // Our own code builds without warnings (dependencies' warnings are theirs).
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "batchform",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "batchform", targets: ["batchform"]),
        .executable(name: "trivial-model-server", targets: ["TrivialModelServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // Without its default traits Hummingbird does not pull in swift-configuration.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        // Already in the graph through Hummingbird: no extra build.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(name: "CZlib", linkerSettings: [.linkedLibrary("z")]),
        .target(name: "CByteCount"),
        .target(name: "CProcessSpawn"),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "TransformSpec", swiftSettings: swiftSettings),
        .target(
            name: "AWSSigV4",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // ByteStream, gzip and the other byte plumbing that storage, records and model data share.
        .target(
            name: "ByteStreams",
            dependencies: ["CZlib", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ObjectStorage",
            dependencies: [
                "AWSSigV4",
                "ByteStreams",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Records",
            dependencies: [
                "CByteCount",
                "TransformSpec",
                "ByteStreams",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ModelRuntime",
            dependencies: [
                "CProcessSpawn",
                "TransformSpec",
                "ByteStreams",
                "ObjectStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TransformEngine",
            dependencies: [
                "TransformSpec",
                "ByteStreams",
                "ObjectStorage",
                "Records",
                "ModelRuntime",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Cluster",
            dependencies: [
                "TransformSpec",
                "ObjectStorage",
                "ModelRuntime",
                "TransformEngine",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BatchformServer",
            dependencies: [
                "CSQLite",
                "Cluster",
                "AWSSigV4",
                "TransformSpec",
                "ObjectStorage",
                "TransformEngine",
                "ModelRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BatchformClient",
            dependencies: [
                "AWSSigV4",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "batchform",
            dependencies: [
                "BatchformServer",
                "BatchformClient",
                "Cluster",
                "AWSSigV4",
                "TransformSpec",
                "ObjectStorage",
                "TransformEngine",
                "ModelRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Benchmark support, not part of Batchform: a model server that costs almost nothing.
        .executableTarget(
            name: "TrivialModelServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Benchmarks/TrivialModelServer",
            swiftSettings: swiftSettings
        ),
        // Seeded random inputs and mutations, shared by the fuzz tests of every parser.
        .target(name: "FuzzSupport", path: "Tests/FuzzSupport", swiftSettings: swiftSettings),
        .testTarget(name: "TransformSpecTests", dependencies: ["TransformSpec"], swiftSettings: swiftSettings),
        .testTarget(
            name: "AWSSigV4Tests",
            dependencies: ["AWSSigV4"],
            exclude: ["botocore-vectors.json"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RecordsTests",
            dependencies: [
                "FuzzSupport", "Records", "ByteStreams", "TransformSpec",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ModelRuntimeTests",
            dependencies: [
                "FuzzSupport", "ModelRuntime", "TransformSpec", "Records", "ObjectStorage", "ByteStreams",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TransformEngineTests",
            dependencies: [
                "TransformEngine", "TransformSpec", "ObjectStorage", "ModelRuntime", "Records", "ByteStreams",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BatchformServerTests",
            dependencies: [
                "BatchformServer", "TransformSpec", "TransformEngine", "AWSSigV4",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "Records", "ByteStreams", "ObjectStorage", "AWSSigV4", .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
    ]
)
