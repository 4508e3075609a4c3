/// Cuts the quoted history a mail client appends below a reply, so the ticket shows
/// what the customer wrote now and not the whole thread again.
///
/// It cuts only where clients mark history unambiguously:
/// - an attribution line such as "On Sun, Nov 29, 2026 at 9:30 AM Ana <ana@x> wrote:"
///   (Gmail) or "On 29 Nov 2026, at 09:30, Ana <ana@x> wrote:" (Apple Mail), also
///   wrapped over up to three lines, and its German, French, Spanish, Dutch, Italian and
///   Portuguese forms; it must contain a digit (the date), so a sentence that merely
///   starts with "On" and ends with "wrote:" is left alone;
/// - Outlook's "-----Original Message-----" separator;
/// - Outlook's header block: a "From:" line followed within four lines by "Sent:" or
///   "Date:" (and the "_____" rule Outlook puts above it);
/// - a block of ">"-quoted lines at the end of the text.
/// Inline answers between quoted lines are kept. When cutting would leave nothing,
/// the text is returned whole: an empty ticket message helps nobody.
///
/// Linear: each line is looked at by a fixed number of checks (an attribution joins at
/// most three lines, an Outlook block looks four ahead).
public enum QuotedHistory {
    public static func strip(_ text: String) -> String {
        ParseBudget.unbounded { budget throws(InboundMailError) in try strip(text, budget: budget) }
    }

    static func strip(_ text: String, budget: ParseBudget) throws(InboundMailError) -> String {
        let lines = try text.lines(budget: budget)
        var keep = lines.count
        if let cut = try firstHistoryLine(lines, budget: budget) { keep = cut }
        var kept = Array(lines[..<keep])
        dropTrailingQuote(&kept)
        while let last = kept.last, isBlank(last) { kept.removeLast() }
        guard kept.contains(where: { !isBlank($0) }) else { return text }
        return kept.joined(separator: "\n")
    }

    private static func firstHistoryLine(_ lines: [Substring], budget: ParseBudget) throws(InboundMailError) -> Int? {
        for index in lines.indices {
            try budget.check(at: index)
            let line = trimmed(lines[index])
            if line.isEmpty { continue }
            if isOriginalMessageSeparator(line) { return index }
            if isOutlookHeaderBlock(lines, at: index) {
                if index > 0, isUnderscoreRule(trimmed(lines[index - 1])) { return index - 1 }
                return index
            }
            // The attribution, whole or wrapped over the next one or two lines.
            var joined = line
            for extra in 0..<3 where index + extra < lines.count {
                if extra > 0 {
                    let next = trimmed(lines[index + extra])
                    if next.isEmpty || next.hasPrefix(">") { break }
                    joined += " " + next
                }
                if isAttribution(joined) { return index }
            }
        }
        return nil
    }

    private static let attributionForms: [(prefix: String, suffixes: [String])] = [
        ("On ", ["wrote:", "wrote :"]),
        ("Am ", ["schrieb:", "geschrieben:"]),
        ("Le ", ["a écrit :", "a écrit:", "a écrit\u{00A0}:"]),
        ("El ", ["escribió:", "escribió :"]),
        ("Op ", ["geschreven:", "het volgende geschreven:"]),
        ("Il ", ["ha scritto:"]),
        ("Em ", ["escreveu:"]),
    ]

    static func isAttribution(_ line: String) -> Bool {
        guard line.utf8.count <= 400, line.contains(where: { $0.isASCII && $0.isNumber }) else { return false }
        return attributionForms.contains { form in
            line.hasPrefix(form.prefix) && form.suffixes.contains { line.hasSuffix($0) }
        }
    }

    /// "-----Original Message-----", any number of dashes, any case.
    private static func isOriginalMessageSeparator(_ line: String) -> Bool {
        guard line.hasPrefix("--") && line.hasSuffix("--") else { return false }
        let inner = line.trimmingCharacters(of: "-").trimmingSpaces().lowercased()
        return inner == "original message" || inner == "ursprüngliche nachricht" || inner == "message d'origine"
            || inner == "mensaje original"
    }

    private static func isUnderscoreRule(_ line: String) -> Bool {
        line.count >= 10 && line.allSatisfy { $0 == "_" }
    }

    private static let fromLabels = ["From:", "Von:", "De :", "De:"]
    private static let sentLabels = ["Sent:", "Date:", "Gesendet:", "Datum:", "Envoyé :", "Envoyé:", "Enviado el:", "Enviado:"]

    /// Outlook's "From: ... / Sent: ... / To: ... / Subject: ..." block; Outlook may bold
    /// the labels, which plain-text conversions show as "*From:*".
    private static func isOutlookHeaderBlock(_ lines: [Substring], at index: Int) -> Bool {
        let line = unbolded(trimmed(lines[index]))
        guard fromLabels.contains(where: { line.hasPrefix($0) }) else { return false }
        for next in lines[(index + 1)..<min(lines.count, index + 5)] {
            let candidate = unbolded(trimmed(next))
            if sentLabels.contains(where: { candidate.hasPrefix($0) }) { return true }
        }
        return false
    }

    private static func unbolded(_ line: String) -> String {
        line.hasPrefix("*") ? String(line.dropFirst()).replacingFirst("*", with: "") : line
    }

    /// Removes a trailing run of ">" lines (blank lines inside it included).
    private static func dropTrailingQuote(_ lines: inout [Substring]) {
        var end = lines.count
        while end > 0 && isBlank(lines[end - 1]) { end -= 1 }
        var start = end
        while start > 0 && (trimmed(lines[start - 1]).hasPrefix(">") || isBlank(lines[start - 1])) { start -= 1 }
        guard start < end, lines[start..<end].contains(where: { trimmed($0).hasPrefix(">") }) else { return }
        lines.removeSubrange(start...)
    }

    private static func isBlank(_ line: Substring) -> Bool { line.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\r" } }

    private static func trimmed(_ line: Substring) -> String { String(line).trimmingSpaces() }
}
