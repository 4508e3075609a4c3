// swift-tools-version:6.0
// peekd: the Peek Live real-time server. The target list is the architecture:
// pure, socket-free modules (PeekCore, PeekHTTP, PeekWebSocket, PeekMail) at
// the bottom; TLS, networking and storage shells above them; PeekServer wires
// them together; `peekd` is only the command line.
import PackageDescription

let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "peekd",
    products: [
        .executable(name: "peekd", targets: ["peekd"]),
    ],
    targets: [
        // C enters only through these: system calls Glibc lacks, and macros/variadics.
        .target(name: "CSystem"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl"),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3"),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib"),
        .systemLibrary(name: "CPostgres", pkgConfig: "libpq"),

        // Pure (bytes in, values out; libcrypto/zlib only for hashing and deflate).
        .target(name: "PeekCrypto", dependencies: ["COpenSSL"], swiftSettings: swift6),
        .target(name: "PeekCalendar", swiftSettings: swift6),
        .target(name: "PeekCore", dependencies: ["PeekCrypto", "PeekCalendar"], swiftSettings: swift6, linkerSettings: [.linkedLibrary("m")]),
        .target(name: "PeekHTTP", dependencies: ["PeekCore", "PeekCrypto", "PeekCalendar"], swiftSettings: swift6),
        .target(name: "PeekWebSocket", dependencies: ["PeekCrypto", "CZlib"], swiftSettings: swift6),
        .target(name: "PeekMail", dependencies: ["PeekCrypto", "PeekCalendar"], swiftSettings: swift6),

        // Shells: TLS as a byte transform, the epoll loops, SQLite and PostgreSQL.
        .target(name: "PeekTLS", dependencies: ["COpenSSL", "PeekCrypto"], swiftSettings: swift6),
        .target(name: "PeekNet", dependencies: ["CSystem", "PeekCore", "PeekTLS"], swiftSettings: swift6),
        .target(name: "PeekStore", dependencies: ["CSQLite", "PeekCore"], swiftSettings: swift6),
        // The PostgreSQL store (--database postgres://...): apart, so SQLite's users do not link libpq.
        .target(name: "PeekPostgres", dependencies: ["CPostgres", "PeekStore", "PeekCore"], swiftSettings: swift6),

        // The engine: the single writer and every rule of tickets, presence,
        // replies and sessions. It sees the store and the bus only through
        // their protocols (TicketStore in PeekCore, DeltaBus here): no
        // sockets, no SQLite, no TLS, so the compiler keeps those seams.
        .target(name: "PeekEngine", dependencies: ["CSystem", "PeekCore", "PeekCrypto", "PeekMail"], swiftSettings: swift6),

        // The demo RMM agent (`peekd --demo`, and tests): a mutual-TLS client of the agent socket.
        .target(name: "PeekDemoAgent", dependencies: ["PeekCore", "PeekCrypto", "PeekTLS", "PeekWebSocket"], swiftSettings: swift6),

        // Glue and the command line.
        .target(name: "PeekServer", dependencies: [
            "PeekCore", "PeekEngine", "PeekHTTP", "PeekWebSocket", "PeekMail", "PeekTLS", "PeekNet", "PeekStore", "PeekPostgres", "PeekDemoAgent",
        ], swiftSettings: swift6),
        .executableTarget(name: "peekd", dependencies: ["PeekServer", "PeekEngine", "PeekTLS", "PeekStore", "PeekPostgres"], swiftSettings: swift6),
        .executableTarget(name: "peek-bench", dependencies: ["PeekCore", "PeekWebSocket", "PeekTLS", "PeekNet", "CSystem"], swiftSettings: swift6),

        // Test clients and fixtures shared by the test targets (not in any product).
        .target(name: "PeekTestSupport", dependencies: [
            "PeekCrypto", "PeekTLS", "PeekWebSocket", "PeekCore", "PeekEngine", "PeekServer", "CSystem",
        ], path: "Tests/PeekTestSupport", swiftSettings: swift6),

        .testTarget(name: "PeekCoreTests", dependencies: ["PeekCore", "PeekCalendar"], swiftSettings: swift6),
        .testTarget(name: "PeekHTTPTests", dependencies: ["PeekHTTP"], swiftSettings: swift6),
        .testTarget(name: "PeekWebSocketTests", dependencies: ["PeekWebSocket", "PeekTestSupport"], swiftSettings: swift6),
        .testTarget(name: "PeekTLSTests", dependencies: ["PeekTLS", "PeekTestSupport"], swiftSettings: swift6),
        .testTarget(name: "PeekMailTests", dependencies: ["PeekMail"], swiftSettings: swift6),
        .testTarget(name: "PeekStoreTests", dependencies: ["PeekStore", "PeekPostgres", "PeekTestSupport"], swiftSettings: swift6),
        .testTarget(name: "PeekNetTests", dependencies: ["PeekNet"], swiftSettings: swift6),
        // The engine's rules without sockets or a database file: the
        // in-memory store, a recording bus and a manual clock.
        .testTarget(name: "PeekEngineTests", dependencies: ["PeekEngine", "PeekServer", "PeekCore", "PeekHTTP", "PeekTestSupport"], swiftSettings: swift6),
        .testTarget(name: "PeekServerTests", dependencies: [
            "PeekServer", "PeekEngine", "PeekTestSupport", "PeekMail", "PeekCrypto", "PeekPostgres", "PeekDemoAgent",
        ], swiftSettings: swift6),
    ]
)
