#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// What the demo agent does with one line typed into its shell: run one of
/// a fixed allow-list of harmless commands, or refuse with a line saying so.
/// A demo may be reachable by others, so nothing else runs, and nothing runs
/// through a shell: the words go to the program as its arguments.
public enum DemoShellCommand: Equatable, Sendable {
    /// Run `executable` (an absolute path) with `arguments`.
    case run(executable: String, arguments: [String])
    /// Not on the allow-list: the line to print instead.
    case refuse(String)
    /// An empty line: print a new prompt.
    case nothing

    /// The commands a demo agent runs: `echo` with any words, the others
    /// exactly as written.
    public static let allowList = ["echo", "date", "uptime", "df -h", "whoami"]
    public static let refusal = "refused: the demo agent runs only echo, date, uptime, df -h and whoami"

    public static func parse(_ line: String, searchPath: [String] = ["/usr/bin", "/bin"]) -> DemoShellCommand {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let program = words.first else { return .nothing }
        let allowed = program == "echo" || allowList.contains(words.joined(separator: " "))
        guard allowed else { return .refuse("\(refusal) (not \(words.joined(separator: " ")))") }
        for directory in searchPath where access(directory + "/" + program, X_OK) == 0 {
            return .run(executable: directory + "/" + program, arguments: Array(words.dropFirst()))
        }
        return .refuse("\(program): not installed on this device")
    }
}

/// The resize hint a console sends inside its input: the xterm window
/// sequence `ESC [ 8 ; rows ; columns t` (protocol.md §6.1). Taken out of the
/// data; the last one wins.
public struct ResizeHint: Equatable, Sendable {
    public var rows: Int
    public var columns: Int

    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
    }

    /// `data` without its resize sequences, and the last hint in it.
    public static func extract(from data: String) -> (data: String, hint: ResizeHint?) {
        var rest = Substring(data)
        var out = ""
        var hint: ResizeHint?
        while let start = rest.range(of: "\u{1b}[8;") {
            out += rest[..<start.lowerBound]
            let tail = rest[start.upperBound...]
            guard let end = tail.firstIndex(of: "t") else { out += rest[start.lowerBound...]; rest = ""; break }
            let numbers = tail[..<end].split(separator: ";").compactMap { Int($0) }
            if numbers.count == 2, (1...1000).contains(numbers[0]), (1...1000).contains(numbers[1]) {
                hint = ResizeHint(rows: numbers[0], columns: numbers[1])
            }
            rest = tail[tail.index(after: end)...]
        }
        out += rest
        return (out, hint)
    }
}

/// One shell session of the demo agent: input bytes in, output chunks out
/// (through `emit`, on any thread). Lines run one at a time, each as a real
/// process with a time limit; Ctrl-C (U+0003) stops the running one.
final class DemoShellSession: @unchecked Sendable {
    // @unchecked: every field below is guarded by `lock`.
    let id: String
    private let timeLimit: Double
    /// Where allowed programs are looked up (tests put stand-ins first).
    private let searchPath: [String]
    private let emit: @Sendable (String) -> Void
    private let lock = NSLock()
    private var pendingInput = ""
    private var queuedLines: [String] = []
    private var running: Process?
    private var size = ResizeHint(rows: 24, columns: 80)
    private var ended = false

    static let prompt = "\u{1b}[32m$\u{1b}[0m "

    init(id: String, timeLimit: Double, searchPath: [String] = ["/usr/bin", "/bin"], emit: @escaping @Sendable (String) -> Void) {
        self.id = id
        self.timeLimit = timeLimit
        self.searchPath = searchPath
        self.emit = emit
    }

    func start(banner: String) {
        emit(banner + "\n" + Self.prompt)
    }

    func input(_ raw: String) {
        let (data, hint) = ResizeHint.extract(from: raw)
        var toRun: String?
        lock.lock()
        if let hint { size = hint }
        for ch in data.unicodeScalars {
            switch ch {
            case "\u{3}":
                pendingInput = ""
                queuedLines = []
                if let running, running.isRunning {
                    emit("^C\n")
                    kill(running.processIdentifier, SIGINT)
                } else {
                    emit("^C\n" + Self.prompt)
                }
            case "\n", "\r":
                queuedLines.append(pendingInput)
                pendingInput = ""
            default:
                pendingInput.unicodeScalars.append(ch)
            }
        }
        if running == nil && !queuedLines.isEmpty { toRun = queuedLines.removeFirst() }
        lock.unlock()
        if let toRun { run(toRun) }
    }

    func end() {
        lock.lock()
        ended = true
        queuedLines = []
        let process = running
        lock.unlock()
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    private func run(_ line: String) {
        let command = DemoShellCommand.parse(line, searchPath: searchPath)
        emit(line + "\n")
        switch command {
        case .nothing:
            finished()
        case .refuse(let message):
            emit("\u{1b}[31m\(message)\u{1b}[0m\n")
            finished()
        case .run(let executable, let arguments):
            launch(executable, arguments)
        }
    }

    private func launch(_ executable: String, _ arguments: [String]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        lock.lock()
        let size = self.size
        lock.unlock()
        process.environment = ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "COLUMNS": "\(size.columns)", "LINES": "\(size.rows)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let reader = pipe.fileHandleForReading
        do { try process.run() } catch {
            emit("\u{1b}[31mcould not run \(executable): \(error)\u{1b}[0m\n")
            finished()
            return
        }
        try? pipe.fileHandleForWriting.close()
        lock.lock()
        running = process
        lock.unlock()
        let limit = timeLimit
        let timedOut = TimedOutFlag()
        DispatchQueue.global().asyncAfter(deadline: .now() + limit) {
            guard process.isRunning else { return }
            timedOut.set()
            kill(process.processIdentifier, SIGKILL)
        }
        Thread.detachNewThread { [self] in
            var carry: [UInt8] = []
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                carry += chunk
                let cut = Self.completeUTF8Prefix(carry)
                if cut > 0 {
                    emit(String(decoding: carry[..<cut], as: UTF8.self))
                    carry.removeFirst(cut)
                }
            }
            if !carry.isEmpty { emit(String(decoding: carry, as: UTF8.self)) }
            process.waitUntilExit()
            try? reader.close()
            if timedOut.value {
                emit("\u{1b}[33m[stopped: the demo agent gives a command \(Int(limit)) s]\u{1b}[0m\n")
            } else if process.terminationReason == .exit && process.terminationStatus != 0 {
                emit("[exit \(process.terminationStatus)]\n")
            }
            finished()
        }
    }

    /// The next queued line, or a prompt.
    private func finished() {
        lock.lock()
        running = nil
        let next = ended || queuedLines.isEmpty ? nil : queuedLines.removeFirst()
        let done = ended
        lock.unlock()
        if let next { run(next) } else if !done { emit(Self.prompt) }
    }

    /// How many leading bytes form whole UTF-8 characters (a chunk may end
    /// inside one; its rest comes with the next read).
    static func completeUTF8Prefix(_ bytes: [UInt8]) -> Int {
        var i = bytes.count
        var back = 0
        while i > 0 && back < 4 {
            i -= 1
            back += 1
            let b = bytes[i]
            if b & 0x80 == 0 { return bytes.count }
            if b & 0xC0 == 0xC0 {
                let need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2
                return back >= need ? bytes.count : i
            }
        }
        return bytes.count
    }
}

private final class TimedOutFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.lock(); flag = true; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return flag }
}
