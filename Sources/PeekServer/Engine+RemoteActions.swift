import PeekCore

/// Remote actions beyond the recorded session: the words their system
/// events use. Kept apart from Engine+Agents so the kinds grow here.
extension Engine {
    /// The system event of `start_session`. The recorded session keeps the
    /// words it has always had (clients and logs already show them).
    static func requestText(_ kind: SessionKind, by technician: String, on asset: String) -> String {
        let what = kind == .recording ? "recorded remote session" : kind.phrase
        return "\(technician) requested a \(what) on \(asset); waiting for the end user's consent."
    }

    /// The system event of a consent outcome; `kind` is the stored raw value.
    static func resolutionText(_ status: SessionStatus, kind: String) -> String {
        let sessionKind = SessionKind(rawValue: kind) ?? .recording
        let what = sessionKind.phrase
        switch status {
        case .active:
            return sessionKind == .recording
                ? "The end user accepted the recorded session; recording started."
                : "The end user accepted the \(what); it is active."
        case .denied: return "The end user declined the \(what)."
        case .expired: return "The consent request for the \(what) expired."
        default: return "The \(what) ended."
        }
    }
}
