#if canImport(Glibc)
import Glibc
#endif

/// Reads a process's memory and CPU from /proc (the server under test, this
/// generator, and the whole machine for "other load").
enum ProcessSampler {
    /// `VmRSS`/`VmHWM` of `pid` in KiB; -1 when unknown.
    static func memoryKiB(_ pid: Int32, field: String = "VmRSS") -> Int {
        guard pid > 0, let text = readFile("/proc/\(pid)/status") else { return -1 }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let digits = line.dropFirst(field.count + 1).filter { $0.isNumber }
            return Int(digits) ?? -1
        }
        return -1
    }

    /// User+system CPU seconds of `pid`; -1 when unknown.
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard pid > 0, let text = readFile("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return -1 }
        // Fields after ")": state(3) ... utime(14) stime(15).
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return -1 }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func selfCPUSeconds() -> Double {
        var ru = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &ru)
        return Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6 + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
    }

    /// Busy CPU seconds of the whole machine (every core; includes irq/softirq,
    /// which on loopback is mostly this very test's TCP work).
    static func machineBusySeconds() -> Double {
        guard let text = readFile("/proc/stat"), let line = text.split(separator: "\n").first else { return 0 }
        let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard v.count >= 7 else { return 0 }
        // user nice system idle iowait irq softirq steal
        let busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v.count > 7 ? v[7] : 0)
        return busy / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4096) }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > 1 << 20 { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// CPU used over a window by the server, this generator and everything else.
struct CPUWindow {
    let serverPID: Int32
    var server0 = 0.0, self0 = 0.0, machine0 = 0.0, t0: UInt64 = 0
    var serverPct = -1.0, selfPct = 0.0, otherPct = 0.0

    init(serverPID: Int32) { self.serverPID = serverPID }

    mutating func start() {
        t0 = monotonicNanos()
        server0 = ProcessSampler.cpuSeconds(serverPID)
        self0 = ProcessSampler.selfCPUSeconds()
        machine0 = ProcessSampler.machineBusySeconds()
    }

    mutating func stop() {
        let wall = max(1e-9, Double(monotonicNanos() &- t0) / 1e9)
        let s = ProcessSampler.cpuSeconds(serverPID)
        let me = ProcessSampler.selfCPUSeconds() - self0
        let all = ProcessSampler.machineBusySeconds() - machine0
        let server = server0 >= 0 && s >= 0 ? s - server0 : 0
        serverPct = server0 >= 0 && s >= 0 ? 100 * server / wall : -1
        selfPct = 100 * me / wall
        otherPct = max(0, 100 * (all - me - server) / wall)
    }
}
