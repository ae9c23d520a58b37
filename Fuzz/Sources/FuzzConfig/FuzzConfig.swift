import FuzzSupport
import Metering
import TallyConfiguration

// tally.yaml through `ConfigLoader.parse(yaml:fileName:)`, what `tally serve`, `check-config` and
// every command that reads the config call once the file is read.
//
// Properties: the reader never traps; it returns a config or throws `ConfigError` with at least one
// problem, each with a message and a line inside the text (or none, or the end); and reading is deterministic.

@_cdecl("FuzzConfig_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzOneInput)
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    // `ConfigLoader.load(path:)` refuses a file that is not UTF-8 before it parses.
    guard let text = String(validating: FuzzDriver.buffer(start, count), as: UTF8.self) else { return 0 }
    // YAML's line breaks: LF, CR, CRLF, NEL, LS, PS; a problem may sit at the end, after the last.
    let breaks: Set<Character> = ["\n", "\r", "\r\n", "\u{85}", "\u{2028}", "\u{2029}"]
    let lines = text.split(omittingEmptySubsequences: false) { breaks.contains($0) }.count
    do throws(ConfigError) {
        let config = try ConfigLoader.parse(yaml: text, fileName: "fuzz.yaml")
        require(Set(config.meters.map(\.code)).count == config.meters.count, "two meters with one code")
    } catch {
        require(!error.problems.isEmpty, "a ConfigError without problems")
        for problem in error.problems {
            require(!problem.message.isEmpty, "a problem without a message")
            if let line = problem.line { require(line >= 1 && line <= lines, "problem on line \(line) of \(lines)") }
        }
        do throws(ConfigError) {
            _ = try ConfigLoader.parse(yaml: text, fileName: "fuzz.yaml")
            require(false, "the second read of the same text accepts it")
        } catch let again {
            require(again == error, "the second read of the same text finds other problems")
        }
    }
    return 0
}
