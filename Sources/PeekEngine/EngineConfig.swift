import PeekCore

/// What the engine is told: the part of `ServerConfig` that shapes its
/// rules and bounds, and nothing about sockets, TLS or where the store
/// lives. `PeekServer` fills it from `ServerConfig.engine`; the defaults
/// are protocol.md's (documented at `ServerConfig`).
package struct EngineConfig: Sendable {
    package var jwtSecret = ""
    package var serviceToken = ""
    package var heartbeatSeconds = 30
    package var consentTimeoutSeconds = 120
    package var slaTickSeconds = 15
    package var retainDeltas = 1000
    package var smtpTimeoutSeconds = 30
    /// Quiet time after a customer message before the summariser is called.
    package var summaryDebounceMillis: Int64 = 10_000
    package var demo = false
    package var maxConnectionsPerTenant = 9_950
    package var shellOutputBytesPerSecond = 64 * 1024
    package var shellIdleSeconds = 15 * 60
    package var maxSubscriptionsPerConnection = 100
    package var maxAttachmentBytes = 10 * 1024 * 1024
    package var attachmentLinkSeconds = 300
    package var maxReplyAttachmentBytes = 25 * 1024 * 1024
    package var maxRepliesInFlightPerTechnician = 4
    package var maxRepliesInFlight = 256
    package var replyRecordAttempts = 10
    package var maxEngineBacklog = 10_000
    /// Where the engine reads time (`ServerConfig.clock`).
    package var clock: any TimeSource = SystemTimeSource()
    package var attachmentsDirectory = "./peek-data/attachments"

    package init() {}
}
