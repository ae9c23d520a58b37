import ArgumentParser
import Foundation
import IngestClient
import Logging
import TallyConfiguration
import Metering
import Storage

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print the figures BENCHMARKS.md records.",
        discussion: """
            Example:
              tally bench ingest --events 1000000 --identities-prefill 1000000
            """,
        subcommands: [IngestBench.self, RateBench.self, ArchiveBench.self, QueryBench.self, APIBench.self, DashboardBench.self]
    )
}
