import Foundation
import Yams
import Metering

/// Reads and validates Tally's YAML config file.
///
/// ```swift
/// do {
///     let config = try ConfigLoader.load(path: "config/tally.yaml")
/// } catch {
///     // error.description: one "FILE:LINE:COLUMN: path: message" line per problem
/// }
/// ```
/// Loading reports every problem it finds, each with its line and what to write instead. Unknown keys
/// are errors (with a "did you mean" for near misses). `plans`, `default_plan` and `customers` are
/// read and checked against the meters (see `PriceReader.swift`); `limits` against the meters and
/// plans, and `alerts` and `http` on their own (see `LimitsReader.swift`).
public enum ConfigLoader {
    /// Top-level sections accepted without validation and listed in `TallyConfig.ignoredSections`.
    /// Empty: this build reads and validates every section it accepts.
    public static let ignoredSectionNames: [String] = []

    /// Reads and validates the config file at `path`.
    ///
    /// - Throws: `ConfigError` listing every problem, or saying the file is missing or unreadable.
    public static func load(path: String) throws(ConfigError) -> TallyConfig {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError(fileName: path, problems: [
                ConfigProblem(
                    path: "",
                    message: "no config file at \(path); create it (config/tally.yaml in Tally's repository is "
                        + "an example to start from) or pass --config FILE"
                ),
            ])
        }
        if isDirectory.boolValue {
            throw ConfigError(fileName: path, problems: [
                ConfigProblem(path: "", message: "\(path) is a directory; pass the YAML file itself with --config FILE"),
            ])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(fileName: path, problems: [
                ConfigProblem(path: "", message: "cannot read \(path); check its permissions"),
            ])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(fileName: path, problems: [
                ConfigProblem(path: "", message: "\(path) is not UTF-8 text; save it as UTF-8"),
            ])
        }
        return try parse(yaml: text, fileName: path)
    }

    /// Reads and validates config text; `fileName` only names the source in error messages.
    ///
    /// - Throws: `ConfigError` listing every problem, sorted by line.
    public static func parse(yaml: String, fileName: String) throws(ConfigError) -> TallyConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(fileName: fileName, problems: [syntaxProblem(error, yaml: yaml)])
        }
        let reader = ConfigReader()
        let config = reader.readConfig(root)
        guard reader.problems.isEmpty, let config else {
            throw ConfigError(fileName: fileName, problems: reader.problems)
        }
        return config
    }

    static func syntaxProblem(_ error: any Error, yaml: String) -> ConfigProblem {
        let advice = "; check the indentation and the quoting on this line and the one before it"
        guard let error = error as? YamlError else {
            return ConfigProblem(path: "", message: "the file is not valid YAML: \(error)")
        }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _):
            let during = context.map { " (\($0.text), which started at line \(inText($0.mark, yaml).line))" } ?? ""
            let (line, column) = inText(mark, yaml)
            return ConfigProblem(
                line: line, column: column, path: "",
                message: "YAML syntax error: \(problem)\(during)\(advice)"
            )
        case let .composer(_, problem, mark, _) where problem.contains("another document"):
            return ConfigProblem(
                line: mark.line, column: mark.column, path: "",
                message: "the file holds more than one YAML document; keep everything in one (remove this ---)"
            )
        case let .composer(_, problem, mark, _):
            let (line, column) = inText(mark, yaml)
            return ConfigProblem(line: line, column: column, path: "", message: "YAML error: \(problem)")
        case let .reader(problem, offset, _, _):
            let line = offset.map { offset in yaml.prefix(offset).reduce(1) { $1 == "\n" ? $0 + 1 : $0 } }
            return ConfigProblem(line: line, path: "", message: "the file cannot be read as YAML text: \(problem)")
        case let .duplicatedKeysInMapping(duplicates, context):
            // Yams orders keys that are not text (a list or a mapping as a key) by nothing stable,
            // so with one of those its order and its position differ between two reads of a text
            // (FuzzConfig found it): name them once, and give no position.
            let texts = duplicates.filter { $0 != Self.keyNotText }.sorted()
            let names = texts.map { "\"\($0)\"" } + (texts.count < duplicates.count ? ["a key that is not text"] : [])
            let stable = texts.count == duplicates.count
            guard stable else {
                return ConfigProblem(
                    path: "", message: "the keys \(names.joined(separator: ", ")) appear more than once in one mapping; keep only one of each")
            }
            return ConfigProblem(
                line: context.mark.line, column: context.mark.column, path: "",
                message: "the key \(names.joined(separator: ", ")) appears here and again later in the same mapping; keep only one"
            )
        default:
            return ConfigProblem(path: "", message: "the file is not valid YAML: \(error)")
        }
    }

    /// What Yams names a duplicated key that is not a scalar.
    static let keyNotText = "<uncovertable>"

    /// Where `mark` is in `yaml`. libyaml ends the stream on a line of its own, so a problem at the
    /// end of a text without a final line break has the mark of a line the file does not have
    /// (`meters: [` is "line 2, column 1"): that is the end of the last line.
    static func inText(_ mark: Mark, _ yaml: String) -> (line: Int, column: Int) {
        // YAML's line breaks (YAML 1.1, as libyaml counts them): LF, CR, CRLF, NEL, LS, PS.
        let breaks: Set<Character> = ["\n", "\r", "\r\n", "\u{85}", "\u{2028}", "\u{2029}"]
        let lines = yaml.split(omittingEmptySubsequences: false) { breaks.contains($0) }
        guard mark.line > lines.count, let last = lines.last else { return (mark.line, mark.column) }
        return (lines.count, last.unicodeScalars.count + 1)
    }
}
