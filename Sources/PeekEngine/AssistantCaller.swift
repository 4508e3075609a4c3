import PeekCore

/// The engine's seam to the tenants' Nexie endpoints (protocol.md §11): the
/// HTTP calls themselves live in PeekServer (`AssistantRelay`), on worker
/// threads, like the mailer behind `Mailer`. The engine decides who may ask
/// and what is sent; the caller reaches the endpoint.
package protocol AssistantCaller: Sendable {
    /// Starts an assist whose answer goes to `peer` as `assist_chunk`
    /// frames, then `assist_done` or `error`, all for `id`, through `bus`;
    /// or says why not (nothing was sent).
    func assist(url: HTTPEndpointURL, body: [UInt8], technician: TenantScopedID, peer: Peer, id: String, ticket: String,
                bus: any DeltaBus, logger: ServerLog) -> PeekError?

    /// Calls a summariser; `completion` (on a worker thread) gets the
    /// summary's text and model, or why it failed. False when refused.
    func summarise(url: HTTPEndpointURL, body: [UInt8], tenant: String,
                   completion: @escaping @Sendable (Result<(text: String, model: String), EndpointFailure>) -> Void) -> Bool
}

/// Why a call to a tenant's endpoint failed, as a phrase for the log.
package struct EndpointFailure: Error, Sendable {
    package var text: String
    package init(_ text: String) { self.text = text }
}
