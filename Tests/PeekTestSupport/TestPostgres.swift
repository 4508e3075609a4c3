import Foundation

/// A real PostgreSQL 15 server from the machine's packages, for tests: a
/// fresh cluster (initdb) in a `mktemp -d` directory under /tmp, owned by
/// the `postgres` user because the server refuses to run as root, on a free
/// loopback port with trust authentication. `fsync` and
/// `synchronous_commit` stay on (the defaults): a test of durability runs
/// against the real thing. Start one per test class or share `shared`; each
/// start costs about a second of the machine's two cores.
public final class TestPostgres: @unchecked Sendable {
    public static let binDirectory = "/usr/lib/postgresql/15/bin"
    public let directory: String
    public let port: UInt16
    private var stopped = false
    private static let lock = NSLock()

    /// True when the server binaries are installed (scripts/test.sh installs them).
    public static var isInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: binDirectory + "/initdb")
            && FileManager.default.isExecutableFile(atPath: binDirectory + "/pg_ctl")
    }

    /// One server for the whole test process, started on first use and
    /// stopped when the process exits. Nil (with the reason) if it cannot start.
    public static let shared: Result<TestPostgres, TestPostgresError> = {
        do {
            let server = try TestPostgres()
            atexit { TestPostgres.stopShared() }
            return .success(server)
        } catch let e as TestPostgresError {
            return .failure(e)
        } catch {
            return .failure(TestPostgresError("\(error)"))
        }
    }()

    private static func stopShared() {
        if case .success(let server) = shared { server.stop() }
    }

    public init() throws {
        guard Self.isInstalled else { throw TestPostgresError("PostgreSQL 15 is not installed (\(Self.binDirectory)/initdb)") }
        // Not under the test runner's private temporary folder: the postgres
        // user must be able to reach every directory on the way.
        directory = try Self.run("/usr/bin/mktemp", ["-d", "/tmp/peek-pg.XXXXXX"]).trimmingCharacters(in: .whitespacesAndNewlines)
        port = try Self.freePort()
        let data = directory + "/data"
        do {
            _ = try Self.run("/bin/chown", ["postgres:postgres", directory])
            _ = try Self.asPostgres("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-instructions"])
            let options = "-c listen_addresses=127.0.0.1 -k \(directory) -p \(port) -c fsync=on -c synchronous_commit=on"
                + " -c max_connections=200 -c shared_buffers=32MB"
            _ = try Self.asPostgres("pg_ctl", ["-D", data, "-l", directory + "/server.log", "-o", options, "-w", "-t", "60", "start"])
        } catch {
            let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: directory)
            throw TestPostgresError("\(error)\n\(log)")
        }
    }

    /// A connection URL for `database` (created by `createDatabase`).
    public func url(database: String = "postgres") -> String {
        "postgres://postgres@127.0.0.1:\(port)/\(database)"
    }

    /// A new empty database, so tests sharing the server share no rows.
    public func createDatabase() throws -> String {
        let name = "peek_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        _ = try Self.run(Self.binDirectory + "/createdb", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", name])
        return url(database: name)
    }

    /// Stops the server at once (no checkpoint: what a crash leaves) and
    /// removes its directory.
    public func stop() {
        Self.lock.lock()
        defer { Self.lock.unlock() }
        guard !stopped else { return }
        stopped = true
        _ = try? Self.asPostgres("pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }

    // MARK: Processes

    private static func asPostgres(_ tool: String, _ arguments: [String]) throws -> String {
        try run("/usr/sbin/runuser", ["-u", "postgres", "--", binDirectory + "/" + tool] + arguments)
    }

    /// Runs a program to its end and answers what it printed. posix_spawn
    /// and waitpid, not Foundation's Process: its waitUntilExit was seen
    /// here never to return after `pg_ctl start` (whose server lives on).
    @discardableResult
    private static func run(_ path: String, _ arguments: [String]) throws -> String {
        let outputPath = "/tmp/peek-pg-run-\(UUID().uuidString).log"
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard rc == 0 else { throw TestPostgresError("cannot start \(path): errno \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED && WEXITSTATUS == 0, spelled out (the macros do not import).
        guard status & 0x7F == 0, (status >> 8) & 0xFF == 0 else {
            throw TestPostgresError("\(path) \(arguments.joined(separator: " ")) ended with status \(status): \(text)")
        }
        return text
    }

    /// A port the kernel just handed out, released for the server to take.
    private static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestPostgresError("socket: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw TestPostgresError("bind: \(errno)") }
        return UInt16(bigEndian: address.sin_port)
    }
}

public struct TestPostgresError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
