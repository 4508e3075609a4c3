#if canImport(Glibc)
import Glibc
#endif
import CSystem
import PeekCore
import Synchronization

/// What a loop can be asked to run from another thread.
public typealias LoopJob = @Sendable (EventLoop) -> Void

/// Things the loop dispatches readiness to.
protocol Selectable: AnyObject {
    func handleEvents(_ events: UInt32)
}

/// One epoll loop on one thread. It owns every connection accepted on it:
/// only this thread touches their state. Other threads hand it work with
/// `execute`, which queues a closure and pokes an eventfd (the NIO `wakeup0`
/// pattern) — the only cross-thread entry point.
///
/// Each iteration (cf. redis `aeProcessEvents` + `beforeSleep`):
/// 1. flush every connection that queued output since the last iteration
///    (most replies fit the socket buffer, so this saves an EPOLLOUT round
///    trip; only leftovers arm the writable event),
/// 2. wait for readiness (until the next sweep at the latest),
/// 3. dispatch readable/writable events, then run queued jobs,
/// 4. once a second, sweep connections for deadlines and heartbeats: one
///    integer compare per connection instead of a timer object each
///    (uSockets' timeout sweep), so an idle connection costs no timer.
///
/// `@unchecked Sendable`: all stored state other than `inbox` and the
/// descriptors is touched only on the loop's own thread (`assertInLoop`).
public final class EventLoop: @unchecked Sendable {
    public let index: Int
    private let epollFD: Int32
    private let wakeFD: Int32
    private let inbox = Mutex<[LoopJob]>([])
    private let stopped = Atomic<Bool>(false)
    private var thread: pthread_t?

    private var registry: [(generation: UInt32, target: any Selectable)?] = []
    private var nextGeneration: UInt32 = 1
    /// Loop-thread only, never passed `inout` across a call that could reach
    /// it (see Connection's write-path state): no dynamic exclusivity check.
    @exclusivity(unchecked) var pendingFlush: [Connection] = []
    private var connections: [Connection?] = []   // indexed by fd, for the sweep
    public private(set) var connectionCount = 0
    /// `connectionCount` by listener kind, for a listener's own cap.
    private var connectionCountByKind = [Int](repeating: 0, count: ListenerKind.allCases.count)
    public func connectionCount(of kind: ListenerKind) -> Int { connectionCountByKind[kind.slot] }

    /// One receive buffer per loop (uSockets): reads land here and handlers
    /// get a view, so an idle connection owns no read buffer.
    let readBuffer: UnsafeMutableRawBufferPointer
    static let readBufferSize = 256 * 1024
    /// Decrypted TLS input, reused across connections for the same reason.
    var plaintextBuffer: [UInt8] = []
    /// Scratch iovec array for writev, allocated once per loop.
    let iovecs: UnsafeMutablePointer<iovec>
    static let maxIovecs = 64

    private var nextSweepMillis: Int64 = 0
    /// How often the sweep runs. One second suits heartbeats of tens of
    /// seconds; the server shortens it for short heartbeats so a dead peer
    /// is noticed within two of them.
    public var sweepIntervalMillis: Int64 = 1000
    /// Output a connection may have queued, for any reason (fan-out,
    /// replies, pongs, TLS records, HTTP responses), before the loop stops
    /// reading its socket; reading resumes once half of it has drained.
    /// What a peer sends can then only grow its queue by one read burst past
    /// this, however much it sends without reading (a ping flood). The
    /// server sets it to the hard output limit.
    public var pauseInputAboveBytes = Int.max
    private var sweepTasks: [(Int64) -> Void] = []
    var listeners: [Listener] = []

    /// Per-loop state of the layer above (fan-out tables, shared codecs).
    /// Set and read on the loop thread only.
    public var context: AnyObject?

    public init(index: Int) throws(SystemError) {
        self.index = index
        let ep = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard ep >= 0 else { throw SystemError(call: "epoll_create1", errno: errno) }
        let wake = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wake >= 0 else { close(ep); throw SystemError(call: "eventfd", errno: errno) }
        epollFD = ep
        wakeFD = wake
        readBuffer = .allocate(byteCount: Self.readBufferSize, alignment: 16)
        iovecs = .allocate(capacity: Self.maxIovecs)
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue
        ev.data.u64 = UInt64(UInt32(bitPattern: wake))
        if epoll_ctl(ep, EPOLL_CTL_ADD, wake, &ev) != 0 { throw SystemError(call: "epoll_ctl(ADD eventfd)", errno: errno) }
    }

    deinit {
        close(wakeFD)
        close(epollFD)
        readBuffer.deallocate()
        iovecs.deallocate()
    }

    public var inEventLoop: Bool {
        guard let thread else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    /// Debug builds: traps when loop-owned state (`@exclusivity(unchecked)`
    /// fields, `unowned(unsafe)` references that rely on the loop outliving
    /// its connections) is touched off the loop's thread. Compiles out in
    /// release builds, including across modules (inlinable).
    @inlinable
    public func assertInLoop() { assert(inEventLoop, "loop-owned state touched from another thread") }

    // MARK: Cross-thread hand-off

    /// Runs `job` on the loop thread. Safe from any thread; from the loop
    /// itself it still defers to the end of the current iteration.
    ///
    /// attention: this may (will!) be called from outside the event loop.
    public func execute(_ job: @escaping LoopJob) {
        let wasEmpty = inbox.withLock { jobs in
            let empty = jobs.isEmpty
            jobs.append(job)
            return empty
        }
        // Only the first job into an empty inbox writes the eventfd: later
        // ones ride on the same wake-up.
        if wasEmpty { wake() }
    }

    private func wake() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(wakeFD, $0.baseAddress, 8) }
    }

    private func runInbox() {
        var counter: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &counter) { read(wakeFD, $0.baseAddress, 8) }
        let jobs = inbox.withLock { jobs in
            let taken = jobs
            jobs.removeAll(keepingCapacity: true)
            return taken
        }
        for job in jobs { job(self) }
    }

    /// Adds a task the sweep runs once a second on the loop thread.
    public func addSweepTask(_ task: @escaping (Int64) -> Void) {
        assertInLoop()
        sweepTasks.append(task)
    }

    // MARK: Registration

    func register(_ fd: Int32, _ target: any Selectable, events: UInt32) throws(SystemError) -> UInt32 {
        let generation = nextGeneration
        nextGeneration = nextGeneration &+ 1
        if nextGeneration == 0 { nextGeneration = 1 }
        let slot = Int(fd)
        if slot >= registry.count { registry.append(contentsOf: repeatElement(nil, count: slot - registry.count + 1024)) }
        registry[slot] = (generation, target)
        var ev = epoll_event()
        ev.events = events
        // The generation rides along so an event for a descriptor that was
        // closed and reused within one epoll batch is recognised and dropped.
        ev.data.u64 = UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
        if epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &ev) != 0 {
            registry[slot] = nil
            throw SystemError(call: "epoll_ctl(ADD)", errno: errno)
        }
        return generation
    }

    func modify(_ fd: Int32, generation: UInt32, events: UInt32) {
        var ev = epoll_event()
        ev.events = events
        ev.data.u64 = UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
        _ = epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &ev)
    }

    func deregister(_ fd: Int32) {
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
        if Int(fd) < registry.count { registry[Int(fd)] = nil }
    }

    func track(_ connection: Connection) {
        let slot = Int(connection.fd)
        if slot >= connections.count { connections.append(contentsOf: repeatElement(nil, count: slot - connections.count + 1024)) }
        connections[slot] = connection
        connectionCount += 1
        connectionCountByKind[connection.listenerKind.slot] += 1
    }

    func untrack(_ connection: Connection) {
        let slot = Int(connection.fd)
        if slot < connections.count, connections[slot] === connection {
            connections[slot] = nil
            connectionCount -= 1
            connectionCountByKind[connection.listenerKind.slot] -= 1
        }
    }

    /// Every open connection on this loop (for shutdown and sweeps).
    public func forEachConnection(_ body: (Connection) -> Void) {
        assertInLoop()
        for case let c? in connections { body(c) }
    }

    // MARK: Running

    /// Runs the loop on the calling thread until `stop()`. `setUp` runs
    /// first, on the loop thread, to build per-loop state.
    public func run(setUp: (EventLoop) -> Void = { _ in }) {
        thread = pthread_self()
        setUp(self)
        let maxEvents: Int32 = 1024
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Int(maxEvents))
        defer { events.deallocate() }
        nextSweepMillis = monotonicMillis() + sweepIntervalMillis
        while !stopped.load(ordering: .relaxed) {
            flushPending()
            let now = monotonicMillis()
            let timeout = Int32(clamping: max(0, nextSweepMillis - now))
            let n = epoll_wait(epollFD, events, maxEvents, timeout)
            if n < 0 {
                // EINTR (a signal) is not a failure: poll again.
                if errno == EINTR { continue }
                preconditionFailure("epoll_wait failed: \(SystemError(call: "epoll_wait", errno: errno))")
            }
            var wokeUp = false
            for i in 0..<Int(n) {
                let data = CSystem_epoll_event_data(events, Int32(i))
                let flags = CSystem_epoll_event_flags(events, Int32(i))
                let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: data))
                if fd == wakeFD { wokeUp = true; continue }
                let generation = UInt32(truncatingIfNeeded: data >> 32)
                guard Int(fd) < registry.count, let entry = registry[Int(fd)], entry.generation == generation else { continue }
                entry.target.handleEvents(flags)
            }
            if wokeUp { runInbox() }
            let after = monotonicMillis()
            if after >= nextSweepMillis {
                nextSweepMillis = after + sweepIntervalMillis
                sweep(nowMillis: after)
            }
        }
        // Close whatever is left so descriptors are not leaked on stop.
        for case let c? in connections { c.close() }
    }

    public func stop() {
        stopped.store(true, ordering: .relaxed)
        wake()
    }

    private func sweep(nowMillis: Int64) {
        for case let c? in connections { c.tick(nowMillis: nowMillis) }
        for l in listeners where l.paused { l.resume() }
        for task in sweepTasks { task(nowMillis) }
    }

    func scheduleFlush(_ connection: Connection) {
        pendingFlush.append(connection)
    }

    private func flushPending() {
        // A flush can close a connection, which never re-enters this list,
        // but a handler may queue more output while we iterate: loop until dry.
        while !pendingFlush.isEmpty {
            let batch = pendingFlush
            pendingFlush.removeAll(keepingCapacity: true)
            for c in batch { c.flushNow() }
        }
    }
}
