/// RFC 3676 `format=flowed`: Apple Mail and Thunderbird send paragraphs as lines that
/// end in a space ("soft" breaks); reading them back as paragraphs keeps the ticket from
/// showing text broken at column 72.
enum FlowedText {
    /// `lines` without line ends. A line ending in a space joins the next one when both
    /// have the same quote depth; the signature separator "-- " never joins. With
    /// `deleteSpace` (delsp=yes) the trailing space is removed when joining.
    ///
    /// Linear: each line is appended once to the open paragraph's buffer.
    static func unflow(_ lines: [Substring], deleteSpace: Bool, budget: ParseBudget = .unlimited)
        throws(InboundMailError) -> [String] {
        var out: [String] = []
        var paragraph = ""
        var isOpen = false
        var paragraphDepth = 0

        func close() {
            out.append(paragraph)
            paragraph = ""
            isOpen = false
        }

        for (index, raw) in lines.enumerated() {
            try budget.check(at: index)
            let depth = raw.prefix(while: { $0 == ">" }).count
            var content = raw.dropFirst(depth)
            if content.first == " " { content = content.dropFirst() }    // space-stuffing (§4.4)
            let isSoft = content.last == " " && content != "-- "
            if isOpen && depth != paragraphDepth { close() }
            if isSoft && deleteSpace { content = content.dropLast() }
            if !isOpen {
                if depth > 0 { paragraph = String(repeating: ">", count: depth) + " " }
                paragraphDepth = depth
                isOpen = true
            }
            paragraph += content
            if !isSoft { close() }
        }
        if isOpen { close() }
        return out
    }
}
