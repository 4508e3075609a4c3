/// RFC 3676 `format=flowed`: Apple Mail and Thunderbird send paragraphs as lines that
/// end in a space ("soft" breaks); reading them back as paragraphs keeps the ticket from
/// showing text broken at column 72.
enum FlowedText {
    /// `lines` without line ends. A line ending in a space joins the next one when both
    /// have the same quote depth; the signature separator "-- " never joins. With
    /// `deleteSpace` (delsp=yes) the trailing space is removed when joining.
    static func unflow(_ lines: [Substring], deleteSpace: Bool) -> [String] {
        var out: [String] = []
        var paragraph: String?
        var paragraphDepth = 0
        for raw in lines {
            let depth = raw.prefix(while: { $0 == ">" }).count
            var content = raw.dropFirst(depth)
            if content.first == " " { content = content.dropFirst() }    // space-stuffing (§4.4)
            let isSoft = content.last == " " && content != "-- "
            if let open = paragraph, depth != paragraphDepth {
                out.append(open)
                paragraph = nil
            }
            let prefix = depth > 0 ? String(repeating: ">", count: depth) + " " : ""
            var piece = String(content)
            if isSoft && deleteSpace { piece.removeLast() }
            if let open = paragraph {
                paragraph = open + piece
            } else {
                paragraph = prefix + piece
                paragraphDepth = depth
            }
            if !isSoft, let done = paragraph {
                out.append(done)
                paragraph = nil
            }
        }
        if let open = paragraph { out.append(open) }
        return out
    }
}
