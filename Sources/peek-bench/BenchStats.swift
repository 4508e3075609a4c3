/// Counters of one run. Everything a delivery can go wrong with has its own
/// counter, so a fast result with errors cannot pass for a clean one.
struct BenchStats {
    var connectStarted = 0, connectOK = 0, connectErrors = 0, handshakeErrors = 0
    var authErrors = 0, subscribeErrors = 0, setupTimeouts = 0, closedByServer = 0, ioErrors = 0, protocolErrors = 0
    /// Deliveries of the generator's notes: all, and inside the measured window.
    var deliveriesTotal = 0, deliveriesInWindow = 0
    /// Note counters skipped (lost) or seen again, per viewer and publisher.
    var gaps = 0, duplicates = 0
    /// Durable `seq` of a ticket not increasing by exactly 1 on a viewer.
    var seqGaps = 0, seqDuplicates = 0
    /// Deltas of a ticket the viewer did not subscribe to, or a note it could not parse.
    var unexpected = 0
    /// Deltas without the generator's marker (presence, telemetry, system events).
    var otherDeltas = 0, telemetryDeltas = 0
    var results = 0, resultsFailed = 0, resultsInWindow = 0, errorsReceived = 0, otherFrames = 0, pings = 0
    var notesSent = 0, notesInWindow = 0, expectedDeliveries = 0, windowTimeouts = 0, rateResets = 0
    var telemetrySent = 0
    var connectsInWindow = 0
    var bytesIn = 0, bytesOut = 0
}
