import Credits
import Foundation
public import LMDB
public import Metering

/// The one writer of a store: records group commits of events, exactly once.
///
/// Owned by one OS thread (LMDB's rule: a write transaction belongs to the thread that began it);
/// `@unchecked Sendable` only so that it can be handed to that thread once. Each `record` call is
/// one LMDB write transaction: the identities, the events and the aggregates they change are
/// committed (and fsynced) together, so an event counts if and only if its identity is stored.
public final class StoreWriter: @unchecked Sendable {
    public let store: TallyStore
    let index: IdentityIndex
    /// Where the identity index came from when this writer opened.
    public let identityIndexSource: IdentityIndexSource
    private var lastStamp: UInt64
    private var lastSequence: UInt64
    private let meters: [String: Meter]
    /// Usage aggregates logged by recent commits and their folding into `usage`.
    let folder: UsageFolder

    // Scratch space reused across commits so the hot path does not allocate per event.
    private var eventBuffer: [UInt8] = []
    private var keyBuffer: [UInt8] = []
    private var quarterKeyBuffer: [UInt8] = []
    private var dayKeyBuffer: [UInt8] = []
    private var customerKeyBuffer: [UInt8] = []
    private var valueBuffer: [UInt8] = []

    /// Evaluates usage limits inside each group commit; nil: no limits.
    public var limitEvaluator: (any LimitEvaluator)?
    /// What the last successful `record` fired and blocked.
    public private(set) var lastCommit = CommitSummary()
    /// The `meta` settings version the limit evaluator was last loaded with.
    private(set) var knownSettingsVersion: UInt64?
    /// The last sequence in the `alerts` database.
    private(set) var lastAlertSequence: UInt64
    /// Every customer's credit grants, as the last settings change left them (reloaded with limits).
    var creditGrantsByCustomer: [String: [CreditGrant]] = [:]
    /// Customers' credits as committed, by customer, filled as commits touch them (see `CreditAccount`).
    var creditAccounts: [String: CreditAccount] = [:]
    /// Credit lines of an older generation are stale (their accounts were dropped).
    var creditGeneration: UInt64 = 1
    /// Accounts dropped during the commit that runs, kept alive until it ends: its credit changes
    /// point at their periods unretained.
    var retiredCreditAccounts: [[String: CreditAccount]] = []
    /// The credit step's writes to `credit_applied`, logged per commit.
    var creditLog: CreditLogBuffer
    /// Set while a commit runs: the fold and the credit step change the accounts and credit lines
    /// as they go, so a commit that did not land (failed, or runs again) leaves them stale.
    private var creditsUncommitted = false
    var creditPrefix: [UInt8] = []
    var creditKey: [UInt8] = []
    var creditCovered: [ExactDecimal] = []

    /// Opens the writer side of `store` and loads the identity index (and the logged usage) from it.
    /// `usageFolding` says when logged usage is folded into `usage` (tests make it eager).
    /// `creditLogFoldEvery`: how many commits' credit changes `credit_log` holds before one folds them.
    public init(store: TallyStore, usageFolding: UsageFoldPolicy = .standard,
                creditLogFoldEvery: Int = 32) throws(StoreError) {
        self.store = store
        meters = Dictionary(store.configuration.meters.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })
        let loaded: (index: IdentityIndex, stamp: UInt64, source: IdentityIndexSource, sequence: UInt64, alert: UInt64, folder: UsageFolder, creditLogRecords: Int) = try store.readStore("load identities") { transaction in
            let (index, stamp, source) = try Self.loadIdentityIndex(store: store, transaction: transaction)
            var sequence: UInt64 = 0
            try transaction.withCursor(store.events) { cursor in
                if let last = try cursor.last() { sequence = last.key.loadBigEndianUInt64(at: 0) }
            }
            // The newest events may all be archived: never hand out their sequences again.
            if let archived = try transaction.get(store.meta, key: MetaKey.archivedSequence) {
                sequence = max(sequence, archived.withUnsafeBytes { $0.loadBigEndianUInt64(at: 0) })
            }
            var alert: UInt64 = 0
            try transaction.withCursor(store.alerts) { cursor in
                if let last = try cursor.last() { alert = last.key.loadBigEndianUInt64(at: 0) }
            }
            let creditLogRecords = try store.creditLog.map { try transaction.statistics($0).entries } ?? 0
            return (index, stamp, source, sequence, alert, try UsageFolder(store: store, policy: usageFolding, transaction: transaction),
                    creditLogRecords)
        }
        creditLog = CreditLogBuffer(foldEvery: creditLogFoldEvery, records: loaded.creditLogRecords)
        folder = loaded.folder
        lastAlertSequence = loaded.alert
        index = loaded.index
        identityIndexSource = loaded.source
        lastStamp = loaded.stamp
        lastSequence = loaded.sequence
        store.logger.info("store opened", metadata: [
            "path": "\(store.path)", "identities": "\(index.count)", "events": "\(lastSequence)",
        ])
    }

    /// How many identities the store remembers.
    public var identityCount: Int { index.count }

    /// Drops from the in-memory identity index the entries stored before `cutoff` (a commit stamp),
    /// after an archive run forgot them in LMDB. Works through at most `maximumSlots` slots from
    /// `start`; returns where to go on, or nil when the whole index has been swept.
    public func forgetIdentities(storedBefore cutoff: UInt64, from start: IdentitySweepPosition?, maximumSlots: Int = 1 << 20) -> IdentitySweepPosition? {
        index.removeEntries(storedBefore: cutoff, from: start, maximumSlots: maximumSlots)
    }

    /// Applies what a committed transaction's limit evaluation produced.
    func commitLimits(_ result: LimitCommitResult) {
        if let version = result.settingsVersion { knownSettingsVersion = version }
        if let grants = result.creditGrants { creditGrantsByCustomer = grants }
        lastAlertSequence += UInt64(result.alerts.count)
        lastCommit = CommitSummary(blocking: result.blocked, alertsFired: result.alerts)
    }

    /// Cluster mode: called inside each group commit's transaction once its outcomes are known,
    /// before it commits, with the events it accepted (never empty); returns the sequence of the
    /// replicated log that now holds them, which the same transaction stores. Throwing aborts the
    /// commit: nothing of it is recorded. Nil (single-node mode): not called.
    public var replicate: ((_ accepted: [PendingEvent]) throws(StoreError) -> UInt64)?

    /// Records `pending` in one transaction and returns one outcome per event, in order.
    ///
    /// Throws only when the store cannot take the commit at all (a full disk, an I/O error): then
    /// nothing of it was recorded and every event should be answered `unavailable`.
    ///
    /// `replicatedAs`: the events are a message of the replicated log being replayed (cluster
    /// mode), with this sequence: they are not replicated again, and the store records that it
    /// holds the log up to it.
    public func record(_ pending: [PendingEvent], replicatedAs logSequence: UInt64? = nil) throws(StoreError) -> [RecordOutcome] {
        let now = UInt64(max(0, Timestamp.now().nanosecondsSinceEpoch / 1_000_000))
        let stamp = max(now, lastStamp + 1)
        var outcomes: [RecordOutcome] = []
        var newIdentities: [(identity: Hash128, fingerprint: Hash128, sequence: UInt64)] = []
        var sequence = lastSequence
        var limits = LimitCommitResult()
        do {
            try store.environment.write { transaction in
                // The body may run again after the map grows: start from scratch each time.
                folder.rollBack(stamp: stamp)
                outcomes.removeAll(keepingCapacity: true)
                outcomes.reserveCapacity(pending.count)
                newIdentities.removeAll(keepingCapacity: true)
                sequence = lastSequence
                if creditsUncommitted { dropCreditAccounts() }
                retiredCreditAccounts.removeAll()
                creditLog.begin()
                creditsUncommitted = true
                // Valid credit lines belong to accounts the writer holds: with none, the fold keeps no amounts.
                var commit = CommitState(capacity: pending.count, tracksCredits: !creditAccounts.isEmpty)
                for item in pending {
                    let outcome = try recordOne(item, stamp: stamp, sequence: &sequence, commit: &commit,
                                                newIdentities: &newIdentities, transaction: transaction)
                    outcomes.append(outcome)
                }
                try writeIdentities(newIdentities, stamp: stamp, transaction: transaction)
                try countIngest(outcomes, nowMilliseconds: now, transaction: transaction)
                try folder.write(stamp: stamp, previousStamp: lastStamp, eventCount: pending.count, transaction: transaction)
                limits = try evaluateLimits(touched: commit.touched, creditChanges: commit.creditChanges, transaction: transaction) { prefix in
                    try folder.usage(prefix: prefix, transaction: transaction)
                }
                if let log = store.creditLog, let applied = store.creditApplied {
                    try creditLog.write(stamp: stamp, log: log, applied: applied, transaction: transaction)
                }
                try storeLogSequence(logSequence, pending: pending, outcomes: outcomes, transaction: transaction)
            }
        } catch let error as StoreError {
            folder.rollBack(stamp: stamp)
            throw error
        } catch let error as LMDBError where error.code == .mapFull {
            folder.rollBack(stamp: stamp)
            store.logger.error("group commit failed: the store is full", metadata: ["events": "\(pending.count)"])
            throw StoreError(.unavailable, "the store reached store.max_size (\(store.configuration.maximumSize ?? 0) bytes): raise store.max_size and restart, or move old events out")
        } catch let error as LMDBError where error.isDiskFull {
            folder.rollBack(stamp: stamp)
            store.logger.error("group commit failed: the disk is full",
                               metadata: ["code": "\(StoreError.Code.diskFull)", "path": "\(store.path)", "error": "\(error.message)",
                                          "events": "\(pending.count)"])
            throw StoreError(.diskFull, "\(error.message)")
        } catch {
            folder.rollBack(stamp: stamp)
            store.logger.error("group commit failed", metadata: ["error": "\(error)", "events": "\(pending.count)"])
            throw StoreError(.unavailable, "the store cannot take writes: \(error)")
        }
        lastStamp = stamp
        lastSequence = sequence
        folder.committed(stamp: stamp)
        for entry in newIdentities { index.insert(entry.identity, stamp: stamp) }
        commitLimits(limits)
        creditsUncommitted = false
        creditLog.committed()
        retiredCreditAccounts.removeAll()
        return outcomes
    }

    /// Cluster mode: replicates the commit's accepted events (unless it replays the log) and
    /// stores the log sequence that holds them.
    private func storeLogSequence(_ replayed: UInt64?, pending: [PendingEvent], outcomes: [RecordOutcome],
                                  transaction: borrowing WriteTransaction) throws {
        var sequence = replayed
        if sequence == nil, let replicate {
            var accepted: [PendingEvent] = []
            for (index, outcome) in outcomes.enumerated() where outcome == .accepted { accepted.append(pending[index]) }
            guard !accepted.isEmpty else { return }
            sequence = try replicate(accepted)
        }
        guard let sequence else { return }
        var value: [UInt8] = []
        value.appendBigEndian(sequence)
        try transaction.put(store.meta, key: MetaKey.logSequence, value: value)
    }

    /// What one commit has seen so far.
    private struct CommitState {
        /// Identities accepted in this commit, with their fingerprints.
        var identities: [Hash128: Hash128] = [:]
        /// The last period looked up, since consecutive events almost always share it, and whether it is closed.
        var lastPeriod: PeriodInterval?
        var lastPeriodClosed = false
        /// Customers with an event accepted in this commit, with the period it counted in.
        var touched: [TouchedCustomer: TouchedPeriod] = [:]
        /// Whether the writer holds credit accounts: the fold then keeps their rows' amounts (`CreditLine`).
        var tracksCredits: Bool
        /// What the events changed of touched periods' amounts through credit lines (see `TouchedPeriod`).
        var creditChanges: [CreditChange] = []

        /// Sized for `capacity` events up front: growing the tables in steps costs more than the commit's hashing.
        init(capacity: Int, tracksCredits: Bool) {
            identities.reserveCapacity(capacity)
            touched.reserveCapacity(capacity)
            self.tracksCredits = tracksCredits
        }
    }

    private func recordOne(
        _ item: PendingEvent, stamp: UInt64, sequence: inout UInt64, commit: inout CommitState,
        newIdentities: inout [(identity: Hash128, fingerprint: Hash128, sequence: UInt64)],
        transaction: borrowing WriteTransaction
    ) throws -> RecordOutcome {
        let event = item.event
        let identity = store.hashKeys.identity(customer: event.customer, id: event.id)
        let contentStart = EventCodec.encode(event, receivedAt: item.receivedAt, into: &eventBuffer)
        let fingerprint = eventBuffer.withUnsafeBytes { store.hashKeys.hash(UnsafeRawBufferPointer(rebasing: $0[contentStart...])) }

        if let earlier = commit.identities[identity] {
            return earlier == fingerprint ? .duplicate : .rejected(Self.conflict(event))
        }
        if let stored = try storedFingerprint(of: identity, transaction: transaction) {
            return stored == fingerprint ? .duplicate : .rejected(Self.conflict(event))
        }

        let time = event.time ?? item.receivedAt
        if commit.lastPeriod.map({ !($0.start <= time && time < $0.end) }) ?? true {
            let period = store.configuration.billingPeriod.interval(containing: time)
            commit.lastPeriod = period
            var periodKey: [UInt8] = []
            periodKey.appendOrdered(period.start.nanosecondsSinceEpoch)
            commit.lastPeriodClosed = try transaction.get(store.closedPeriods, key: periodKey) != nil
        }
        let period = commit.lastPeriod!
        if commit.lastPeriodClosed {
            return .rejected(IngestError(
                code: .periodClosed,
                message: "the billing period \(period.label) of this event's time is closed: events for it are no longer counted; send it with a time in an open period, or correct the period's statement by hand",
                field: "time"))
        }

        var creditChange: (line: CreditLine, amount: ExactDecimal)?
        if let meter = meters[event.meter], meter.matches(event) {
            switch try foldUsage(of: event, meter: meter, time: time, period: period, stamp: stamp, transaction: transaction) {
            case .rejected(let rejection): return .rejected(rejection)
            case .folded(let entry):
                if commit.tracksCredits, let line = entry.creditLine, line.generation == creditGeneration {
                    // While the row is hot: its new amount, and what that changes of the period's.
                    creditChange = (line, line.rerate(entry.state.quantity))
                }
            }
        }

        sequence += 1
        keyBuffer.removeAll(keepingCapacity: true)
        keyBuffer.appendBigEndian(sequence)
        _ = try transaction.put(store.events, key: keyBuffer, value: eventBuffer, flags: .append)
        commit.identities[identity] = fingerprint
        let touched = TouchedCustomer(customer: event.customer, periodStart: period.start.nanosecondsSinceEpoch)
        if let creditChange {
            let next = Int32(commit.creditChanges.count)
            let index = commit.touched[touched, default: TouchedPeriod(period: period)].creditChange(orNew: next)
            if index == next {
                commit.creditChanges.append(CreditChange(period: creditChange.line.period, amount: creditChange.amount))
            } else {
                let total = commit.creditChanges[Int(index)].amount
                commit.creditChanges[Int(index)].amount = (try? total.adding(creditChange.amount)) ?? total
            }
        } else {
            commit.touched[touched, default: TouchedPeriod(period: period)].touch()
        }
        newIdentities.append((identity, fingerprint, sequence))
        return .accepted
    }

    /// Folds `event` into its period aggregate and its quarter-hour and UTC-day buckets, all or
    /// nothing: an error (an overflow) when any of them cannot take it. Without buckets
    /// (`TallyStore.Configuration.writesUsageBuckets` off: benchmarks) only the period aggregate.
    ///
    /// The period aggregate's entry links the buckets its latest event folded into, so an event in
    /// the same quarter-hour (or day) as the one before it for its customer × meter × group finds
    /// all three with one lookup; only a new bucket builds its key and looks it up.
    private func foldUsage(of event: UsageEvent, meter: Meter, time: Timestamp, period: PeriodInterval, stamp: UInt64,
                           transaction: borrowing WriteTransaction) throws -> FoldOutcome {
        let group = meter.groupBy.map { GroupValue(property: $0, value: event.property($0)?.text ?? "") }
        let nanoseconds = time.nanosecondsSinceEpoch
        UsageKey.make(customer: event.customer, periodStart: period.start, meter: meter.code, group: group,
                      hashKeys: store.hashKeys, into: &keyBuffer)
        let periodFound = try folder.current(keyBuffer, family: .periodUsage, transaction: transaction)
        guard var periodUsage = folded(periodFound, group: group, value: event.value, time: nanoseconds, meter: meter) else {
            return .rejected(Self.overflow(meter))
        }
        var buckets: (quarter: UsageFolder.Found, day: UsageFolder.Found)?
        if store.configuration.writesUsageBuckets {
            // unique_count hashes the bucket keys for its values: it always builds them.
            let linked = meter.aggregation == .uniqueCount ? nil : periodFound?.slot
            let quarterFound = try bucket(.quarterHour, containing: nanoseconds, link: linked?.quarterLink, of: event, meter: meter,
                                          group: group, key: &quarterKeyBuffer, transaction: transaction)
            let dayFound = try bucket(.day, containing: nanoseconds, link: linked?.dayLink, of: event, meter: meter,
                                      group: group, key: &dayKeyBuffer, transaction: transaction)
            guard let quarter = folded(quarterFound, group: group, value: event.value, time: nanoseconds, meter: meter),
                  let day = folded(dayFound, group: group, value: event.value, time: nanoseconds, meter: meter)
            else { return .rejected(Self.overflow(meter)) }
            buckets = (quarter, day)
        }
        if meter.aggregation == .uniqueCount, let property = meter.property, let value = event.property(property) {
            if try isFirstUniqueValue(value.text, key: keyBuffer, in: store.uniqueValues, transaction: transaction) {
                periodUsage.state.countNewValue()
            }
            if buckets != nil, let bucketValues = store.bucketUniqueValues {
                if try isFirstUniqueValue(value.text, key: quarterKeyBuffer, in: bucketValues, transaction: transaction) {
                    buckets?.quarter.state.countNewValue()
                }
                if try isFirstUniqueValue(value.text, key: dayKeyBuffer, in: bucketValues, transaction: transaction) {
                    buckets?.day.state.countNewValue()
                }
            }
        }
        let periodEntry = folder.set(periodUsage.state, inBase: periodUsage.inBase, slot: periodUsage.slot, key: keyBuffer,
                                     family: .periodUsage, stamp: stamp)
        if let (quarter, day) = buckets {
            periodEntry.quarterLink = setBucket(quarter, key: quarterKeyBuffer, start: BucketResolution.quarterHour.start(containing: nanoseconds),
                                                stamp: stamp)
            periodEntry.dayLink = setBucket(day, key: dayKeyBuffer, start: BucketResolution.day.start(containing: nanoseconds), stamp: stamp)
        }
        if periodUsage.slot == nil, !periodUsage.inBase {
            // A new usage row: the customer may be new to the directory (checked only here, so once
            // per customer × meter × group × period, not per event).
            try indexCustomer(event.customer, stamp: stamp, transaction: transaction)
        }
        return .folded(periodEntry)
    }

    private enum FoldOutcome {
        /// Counted: the period aggregate's entry.
        case folded(UsageFolder.Entry)
        case rejected(IngestError)
    }

    /// The `resolution` bucket containing `time` as the store holds it: through `link` when that is
    /// still in the folder's table and is this bucket, else looked up by its key, built into `key`
    /// (a link leaves `key` as it was: `set` does not read the key of an entry it is given).
    private func bucket(_ resolution: BucketResolution, containing time: Int64, link: UsageFolder.Entry?, of event: UsageEvent,
                        meter: Meter, group: [GroupValue], key: inout [UInt8],
                        transaction: borrowing WriteTransaction) throws -> UsageFolder.Found? {
        let start = resolution.start(containing: time)
        if let link, link.isInTable, link.bucketStart == start {
            return (link.state, link.inBase, link)
        }
        BucketKey.make(customer: event.customer, meter: meter.code, resolution: resolution, start: start, group: group,
                       hashKeys: store.hashKeys, into: &key)
        return try folder.current(key, family: .buckets, transaction: transaction)
    }

    /// Sets a bucket aggregate and returns its entry, marked with its start, for the period entry to link.
    private func setBucket(_ bucket: UsageFolder.Found, key: [UInt8], start: Int64, stamp: UInt64) -> UsageFolder.Entry {
        let entry = folder.set(bucket.state, inBase: bucket.inBase, slot: bucket.slot, key: key, family: .buckets, stamp: stamp)
        entry.bucketStart = start
        return entry
    }

    /// Built only on an overflow: the message's interpolation would cost every event an allocation.
    private static func overflow(_ meter: Meter) -> IngestError {
        IngestError(
            code: .invalidValue,
            message: "counting this value would overflow the \(meter.aggregation.rawValue) of meter '\(meter.code)' for this period; split the usage across smaller values or meters",
            field: "value")
    }

    /// Logs `customer` for `customer_index` unless the directory (or the log) has it already.
    private func indexCustomer(_ customer: String, stamp: UInt64, transaction: borrowing WriteTransaction) throws {
        customerKeyBuffer.removeAll(keepingCapacity: true)
        customerKeyBuffer.append(contentsOf: customer.utf8)
        guard try folder.current(customerKeyBuffer, family: .customers, transaction: transaction) == nil else { return }
        folder.set(AggregateState(group: []), inBase: false, slot: nil, key: customerKeyBuffer, family: .customers, stamp: stamp)
    }

    /// The aggregate `found` (nil: a new one) with `event` folded in, and where the folder found
    /// it; nil when the value would overflow it.
    private func folded(_ found: UsageFolder.Found?, group: [GroupValue], value: ExactDecimal, time: Int64, meter: Meter) -> UsageFolder.Found? {
        var (state, inBase, slot) = found ?? (AggregateState(group: group), false, nil)
        do {
            try state.fold(value, time: time, aggregation: meter.aggregation)
        } catch {
            return nil
        }
        return (state, inBase, slot)
    }

    /// Folds every logged usage state into `usage` (see `UsageFolder.foldAll`): the daemon calls
    /// it after its last commit, so a stopped store holds its usage where every reader looks first.
    public func foldLoggedUsage() throws(StoreError) {
        try folder.foldAll()
    }

    /// The fingerprint stored for `identity`, or nil when the store has never seen it.
    private func storedFingerprint(of identity: Hash128, transaction: borrowing WriteTransaction) throws -> Hash128? {
        var found: Hash128?
        var lookupError: (any Error)?
        _ = index.firstStamp(for: identity) { stamp in
            keyBuffer.removeAll(keepingCapacity: true)
            keyBuffer.appendBigEndian(stamp)
            identity.append(to: &keyBuffer)
            do {
                if let value = try transaction.get(store.identities, key: keyBuffer) {
                    found = value.withUnsafeBytes { Hash128(loading: $0, at: 0) }
                    return true
                }
            } catch {
                lookupError = error
                return true
            }
            return false
        }
        if let lookupError { throw lookupError }
        return found
    }

    /// Remembers a unique-count value; true when it was not seen before in this aggregate.
    ///
    /// The value itself is in the key (exact); only a value too long for an LMDB key is hashed,
    /// behind a 0xFF marker that no UTF-8 text starts with.
    private func isFirstUniqueValue(_ text: String, key aggregateKey: [UInt8], in database: Database,
                                    transaction: borrowing WriteTransaction) throws -> Bool {
        var key: [UInt8] = []
        key.reserveCapacity(64)
        store.hashKeys.hash(aggregateKey).append(to: &key)
        var text = text
        text.withUTF8 { value in
            if key.count + value.count <= UsageKey.maximumKeySize, value.first != 0xFF {
                key.append(contentsOf: value)
            } else {
                key.append(0xFF)
                store.hashKeys.hash(UnsafeRawBufferPointer(value)).append(to: &key)
            }
        }
        return try transaction.put(database, key: key, value: [], flags: .noOverwrite) == .stored
    }

    /// Appends this commit's identities under its stamp, sorted, so they form one run at the B-tree's edge.
    private func writeIdentities(_ identities: [(identity: Hash128, fingerprint: Hash128, sequence: UInt64)],
                                 stamp: UInt64, transaction: borrowing WriteTransaction) throws {
        let sorted = identities.sorted { ($0.identity.high, $0.identity.low) < ($1.identity.high, $1.identity.low) }
        for entry in sorted {
            keyBuffer.removeAll(keepingCapacity: true)
            keyBuffer.appendBigEndian(stamp)
            entry.identity.append(to: &keyBuffer)
            valueBuffer.removeAll(keepingCapacity: true)
            entry.fingerprint.append(to: &valueBuffer)
            valueBuffer.appendBigEndian(entry.sequence)
            _ = try transaction.put(store.identities, key: keyBuffer, value: valueBuffer, flags: .append)
        }
    }

    private static func conflict(_ event: UsageEvent) -> IngestError {
        IngestError(
            code: .idempotencyConflict,
            message: "an event with id '\(event.id)' for customer '\(event.customer)' was already recorded with different content (meter, value, time or properties); send a new id for a new event, or resend the original unchanged",
            field: "id")
    }

    /// Adds `count` random identities spread over the `days` before now, without events or usage.
    ///
    /// For benchmarks only: it builds a store that remembers many identities (`tally bench ingest
    /// --identities-prefill`) far faster than ingesting events would.
    public func insertSyntheticIdentities(count: Int, overDays days: Int = 30, progress: (Int) -> Void = { _ in }) throws(StoreError) {
        guard count > 0 else { return }
        var generator = SystemRandomNumberGenerator()
        let now = UInt64(Timestamp.now().nanosecondsSinceEpoch / 1_000_000)
        let span = UInt64(max(1, days)) * 86_400_000
        let commits = max(1, count / 8192)
        var firstStamp = now > span ? now - span : 1
        if firstStamp <= lastStamp { firstStamp = lastStamp + 1 }
        let step = max(1, (now - min(now, firstStamp)) / UInt64(commits))
        var written = 0
        var stamp = firstStamp
        let chunk = 1_000_000
        while written < count {
            let thisChunk = min(chunk, count - written)
            var batch: [(UInt64, Hash128)] = []
            batch.reserveCapacity(thisChunk)
            var perStamp: [Hash128] = []
            var produced = 0
            while produced < thisChunk {
                let size = min(8192, thisChunk - produced)
                perStamp.removeAll(keepingCapacity: true)
                for _ in 0..<size { perStamp.append(Hash128(high: generator.next(), low: generator.next())) }
                perStamp.sort { ($0.high, $0.low) < ($1.high, $1.low) }
                for identity in perStamp { batch.append((stamp, identity)) }
                stamp += step
                produced += size
            }
            do {
                try store.environment.write { transaction in
                    for (entryStamp, identity) in batch {
                        keyBuffer.removeAll(keepingCapacity: true)
                        keyBuffer.appendBigEndian(entryStamp)
                        identity.append(to: &keyBuffer)
                        valueBuffer.removeAll(keepingCapacity: true)
                        Hash128(high: identity.low, low: identity.high).append(to: &valueBuffer)
                        valueBuffer.appendBigEndian(UInt64(0))
                        _ = try transaction.put(store.identities, key: keyBuffer, value: valueBuffer, flags: .append)
                    }
                }
            } catch {
                throw StoreError(.unavailable, "cannot prefill identities: \(error)")
            }
            for (entryStamp, identity) in batch { index.insert(identity, stamp: entryStamp) }
            lastStamp = max(lastStamp, stamp)
            written += thisChunk
            progress(written)
        }
    }
}

extension Meter {
    /// Whether `event` passes the meter's property filter (equality on every filtered property).
    func matches(_ event: UsageEvent) -> Bool {
        for (key, expected) in filter {
            guard let value = event.property(key), value.text == expected else { return false }
        }
        return true
    }
}

extension StoreWriter {
    /// Writes `customers` × `meters.count` usage aggregates for the period starting at `periodStart`,
    /// quantities 1…`maximumQuantity`, without events or identities.
    ///
    /// For benchmarks only (`tally bench rate`): it builds a store with a million usage rows in
    /// seconds, where ingesting the events would take minutes.
    public func insertSyntheticUsage(customers: Int, meters: [String], periodStart: Timestamp, maximumQuantity: Int = 1_000_000) throws(StoreError) {
        var generator = SystemRandomNumberGenerator()
        var rows: [([UInt8], [UInt8])] = []
        rows.reserveCapacity(customers * meters.count)
        var key: [UInt8] = []
        var value: [UInt8] = []
        for customer in 0..<customers {
            for meter in meters {
                UsageKey.make(customer: "cus_\(customer)", periodStart: periodStart, meter: meter, group: [],
                              hashKeys: store.hashKeys, into: &key)
                var state = AggregateState()
                let quantity = 1 + Int(generator.next() % UInt64(maximumQuantity))
                state.eventCount = UInt64(quantity)
                state.quantity = ExactDecimal(quantity)
                state.encode(into: &value)
                rows.append((key, value))
            }
        }
        rows.sort { $0.0.lexicographicallyPrecedes($1.0) }
        do {
            for chunk in stride(from: 0, to: rows.count, by: 100_000) {
                try store.environment.write { transaction in
                    for (key, value) in rows[chunk..<min(rows.count, chunk + 100_000)] {
                        _ = try transaction.put(store.usage, key: key, value: value)
                    }
                }
            }
        } catch {
            throw StoreError(.unavailable, "cannot write synthetic usage: \(error)")
        }
    }
}
