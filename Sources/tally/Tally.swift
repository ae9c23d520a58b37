import ArgumentParser

/// `tally`: usage metering and rating. One executable, one subcommand per task.
@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Usage metering: count every event exactly once, aggregate usage per customer and period.",
        discussion: """
            Start the daemon with `tally serve`, stream events into it with `tally send`, and read
            usage with `tally usage`. See README.md for the socket protocol and the config file.
            """,
        subcommands: [
            ServeCommand.self,
            PortalTokenCommand.self,
            SendCommand.self,
            QuoteCommand.self,
            UsageCommand.self,
            EstimateCommand.self,
            RateCommand.self,
            CustomersCommand.self,
            LimitsCommand.self,
            CreditsCommand.self,
            AlertsCommand.self,
            PeriodCommand.self,
            ArchiveCommand.self,
            ExportCommand.self,
            RerateCommand.self,
            BackupCommand.self,
            RestoreCommand.self,
            CheckConfigCommand.self,
            ClusterCommand.self,
            BenchCommand.self,
        ]
    )
}
