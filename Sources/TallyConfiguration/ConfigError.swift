/// Everything wrong with a config file.
///
/// `description` prints one problem per line: `FILE:LINE:COLUMN: path: message`.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file name given to the loader.
    public var fileName: String
    /// The problems, sorted by line (problems without a line come first).
    public var problems: [ConfigProblem]

    /// Creates an error; the problems are sorted by line, keeping their order within a line.
    public init(fileName: String, problems: [ConfigProblem]) {
        self.fileName = fileName
        self.problems = problems.enumerated().sorted { lhs, rhs in
            let left = (lhs.element.line ?? 0, lhs.element.column ?? 0, lhs.offset)
            let right = (rhs.element.line ?? 0, rhs.element.column ?? 0, rhs.offset)
            return left < right
        }.map(\.element)
    }

    /// One `FILE:LINE:COLUMN: path: message` line per problem.
    public var description: String {
        problems.map { $0.rendered(fileName: fileName) }.joined(separator: "\n")
    }
}

/// One thing wrong with a config file, where it is, and what to write instead.
public struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    /// The 1-based line, when the problem has a place in the file.
    public var line: Int?
    /// The 1-based column (in Unicode scalars), when known.
    public var column: Int?
    /// The key path, such as `ingest.commit_max_events` or `meters[2].aggregation` (0-based
    /// indexes); empty for problems with the file as a whole.
    public var path: String
    /// What is wrong and what to write instead.
    public var message: String

    /// Creates a problem.
    public init(line: Int? = nil, column: Int? = nil, path: String, message: String) {
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    /// `LINE:COLUMN: path: message`.
    public var description: String {
        rendered(fileName: nil)
    }

    func rendered(fileName: String?) -> String {
        var place = [String]()
        if let fileName { place.append(fileName) }
        if let line { place.append(String(line)) }
        if line != nil, let column { place.append(String(column)) }
        var text = place.joined(separator: ":")
        if !text.isEmpty { text += ": " }
        if !path.isEmpty { text += "\(path): " }
        return text + message
    }
}
