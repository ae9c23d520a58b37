import Metering
import Metrics
import Storage

/// The names and help texts of the swift-metrics families the ingest daemon records, for a metrics
/// backend that shows help (Prometheus `# HELP`). Every instrument Ingest creates is named here.
public enum IngestMetricFamilies {
    /// Event lines answered, by `result` (accepted, duplicate, rejected) and, when rejected, `code`.
    public static let events = "tally_events_total"
    /// Events per group commit.
    public static let groupCommitEvents = "tally_group_commit_events"
    /// Time to write and fsync one group commit.
    public static let groupCommitDuration = "tally_group_commit_duration"
    /// Alerts fired by group commits.
    public static let alertsFired = "tally_alerts_fired_total"
    /// Time of one maintenance (archive) step on the writer thread.
    public static let maintenanceStepDuration = "tally_maintenance_step_duration"
    /// Events moved into archive segments.
    public static let archivedEvents = "tally_archived_events_total"
    /// Event identities removed after the dedup window.
    public static let expiredIdentities = "tally_expired_identities_total"
    /// Archive runs that failed.
    public static let archiveFailures = "tally_archive_failures_total"

    /// Bytes read and not yet answered, over every connection and request body.
    public static let bufferedBytes = "tally_ingest_buffered_bytes"
    /// Times a connection or request body paused for the buffer budget.
    public static let readPauses = "tally_ingest_read_pauses_total"

    /// The help text of each family above, by name.
    public static let help: [String: String] = [
        events: "Event lines answered, on the socket and over HTTP, by result (accepted, duplicate, rejected) and rejection code.",
        groupCommitEvents: "Events written per group commit.",
        groupCommitDuration: "Time to write and fsync one group commit, in seconds.",
        alertsFired: "Usage-limit alerts fired by group commits.",
        maintenanceStepDuration: "Time of one maintenance step (an archive transaction) run on the writer thread between group commits, in seconds.",
        archivedEvents: "Events moved from the store into archive segments.",
        expiredIdentities: "Event identities removed once older than the dedup window.",
        archiveFailures: "Scheduled archive runs that failed (see the log); the next run retries.",
        bufferedBytes: "Bytes read and not yet answered, over every socket connection and HTTP request body (bounded by ingest.max_buffered_bytes).",
        readPauses: "Times a socket connection or an HTTP request body paused reading because ingest.max_buffered_bytes was reached.",
    ]
}

/// Ingest's swift-metrics instruments: events by result and error code, group-commit size and
/// latency, alerts fired. Exposed by whatever `MetricsSystem` the executable bootstraps (Prometheus
/// on `/metrics`); without one they cost next to nothing.
struct IngestMetrics: Sendable {
    private let accepted = Counter(label: IngestMetricFamilies.events, dimensions: [("result", "accepted")])
    private let duplicate = Counter(label: IngestMetricFamilies.events, dimensions: [("result", "duplicate")])
    private var rejected: [String: Counter] = [:]
    private let commitSize = Recorder(label: IngestMetricFamilies.groupCommitEvents, aggregate: true)
    private let commitDuration = Timer(label: IngestMetricFamilies.groupCommitDuration)
    private let alertsFired = Counter(label: IngestMetricFamilies.alertsFired)
    private let maintenanceDuration = Timer(label: IngestMetricFamilies.maintenanceStepDuration)

    init() {
        for code in IngestError.Code.allCodes {
            rejected[code.rawValue] = Counter(label: IngestMetricFamilies.events, dimensions: [("result", "rejected"), ("code", code.rawValue)])
        }
    }

    /// Records one group commit (called on the writer thread).
    func record(outcomes: [RecordOutcome], durationNanoseconds: UInt64, alerts: Int) {
        var acceptedCount = 0
        var duplicateCount = 0
        var rejectedByCode: [String: Int] = [:]
        for outcome in outcomes {
            switch outcome {
            case .accepted: acceptedCount += 1
            case .duplicate: duplicateCount += 1
            case .rejected(let error): rejectedByCode[error.code.rawValue, default: 0] += 1
            }
        }
        if acceptedCount > 0 { accepted.increment(by: acceptedCount) }
        if duplicateCount > 0 { duplicate.increment(by: duplicateCount) }
        for (code, count) in rejectedByCode { rejected[code]?.increment(by: count) }
        commitSize.record(outcomes.count)
        commitDuration.recordNanoseconds(Int64(clamping: durationNanoseconds))
        if alerts > 0 { alertsFired.increment(by: alerts) }
    }

    /// Records one maintenance step (an archive transaction) run on the writer thread between commits.
    func recordMaintenance(durationNanoseconds: UInt64) {
        maintenanceDuration.recordNanoseconds(Int64(clamping: durationNanoseconds))
    }

    /// Records lines rejected before they reached the writer (parse errors, long lines).
    func recordRejected(_ code: IngestError.Code) {
        rejected[code.rawValue]?.increment()
    }
}
