import Metering
import Metrics
import Storage

/// Ingest's swift-metrics instruments: events by result and error code, group-commit size and
/// latency, alerts fired. Exposed by whatever `MetricsSystem` the executable bootstraps (Prometheus
/// on `/metrics`); without one they cost next to nothing.
struct IngestMetrics: Sendable {
    private let accepted = Counter(label: "tally_events_total", dimensions: [("result", "accepted")])
    private let duplicate = Counter(label: "tally_events_total", dimensions: [("result", "duplicate")])
    private var rejected: [String: Counter] = [:]
    private let commitSize = Recorder(label: "tally_group_commit_events", aggregate: true)
    private let commitDuration = Timer(label: "tally_group_commit_duration")
    private let alertsFired = Counter(label: "tally_alerts_fired_total")
    private let maintenanceDuration = Timer(label: "tally_maintenance_step_duration")

    init() {
        for code in IngestError.Code.allCodes {
            rejected[code.rawValue] = Counter(label: "tally_events_total", dimensions: [("result", "rejected"), ("code", code.rawValue)])
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
