import Metering
import TallyConfiguration
import Testing

/// Config texts the `FuzzConfig` target (Fuzz/, docs/FUZZING.md) found, read through the entry
/// point it fuzzes: every problem's line is one the text has.
@Suite struct ConfigFuzzTests {
    private func onlyProblem(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigProblem? {
        do {
            let config = try ConfigLoader.parse(yaml: yaml, fileName: "tally.yaml")
            Issue.record("expected a problem, but the config loaded: \(config)", sourceLocation: sourceLocation)
            return nil
        } catch {
            #expect(error.problems.count == 1, "\(error.problems)", sourceLocation: sourceLocation)
            return error.problems.first
        }
    }

    /// The fuzzer's input: a one-line file without a final newline was reported at line 2, column 1
    /// (libyaml ends the stream on a line of its own), a line the file does not have.
    @Test func aSyntaxErrorAtTheEndOfTheLastLineIsOnThatLine() throws {
        let yaml = "- { customer: cus_1, metemodel:r:  ag"
        let problem = try #require(onlyProblem(yaml))
        #expect(problem.line == 1)
        #expect(problem.column == yaml.unicodeScalars.count + 1)
        #expect(problem.message.contains("did not find expected ',' or '}'"), "\(problem.message)")
    }

    /// The context's line too ("which started at line 2" for a flow node begun on line 1).
    @Test func theContextOfAnErrorAtTheEndIsOnTheLastLine() throws {
        let problem = try #require(onlyProblem("meters: ["))
        #expect(problem.line == 1)
        #expect(problem.column == 10)
        #expect(problem.message.contains("which started at line 1)"), "\(problem.message)")
    }

    /// A text ending in a line break keeps the position after it: the empty last line.
    @Test func anErrorAfterTheFinalLineBreakStaysOnTheEmptyLastLine() throws {
        let problem = try #require(onlyProblem("a: 1\r\nmeters: [\n"))
        #expect(problem.line == 3)
        #expect(problem.column == 1)
    }

    /// Lines end at CR as well as LF for YAML, so a lone CR counts as a line break.
    @Test func aLoneCarriageReturnEndsALine() throws {
        let problem = try #require(onlyProblem("a: 1\rmeters: ["))
        #expect(problem.line == 2)
        #expect(problem.column == 10)
    }
}

/// The `FuzzConfig` target's second finding: a mapping with a duplicated key that is not text (a
/// list or a mapping as a key) was reported with its keys in a different order, at a different
/// position, from one read of the text to the next.
@Suite struct ConfigDuplicateKeyFuzzTests {
    private let yaml = "? [a]\n: 1\n? [a]\n: 2\n? {x: 1}\n: 3\n? {x: 1}\n: 4\nb: 1\nb: 2\n"

    private func problems(_ yaml: String) -> [ConfigProblem] {
        do {
            _ = try ConfigLoader.parse(yaml: yaml, fileName: "tally.yaml")
            return []
        } catch {
            return error.problems
        }
    }

    @Test func everyReadOfTheTextFindsTheSameProblem() throws {
        let first = problems(yaml)
        let problem = try #require(first.first)
        #expect(first.count == 1)
        #expect(problem.line == nil)
        #expect(problem.message == #"the keys "b", a key that is not text appear more than once in one mapping; keep only one of each"#)
        for _ in 0..<50 { #expect(problems(yaml) == first) }
    }

    @Test func duplicatedTextKeysKeepTheirPosition() throws {
        let problem = try #require(problems("a: 1\nb: 2\nb: 3\na: 4\n").first)
        #expect(problem.line == 1)
        #expect(problem.message == #"the key "a", "b" appears here and again later in the same mapping; keep only one"#)
    }
}
