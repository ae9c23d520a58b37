import Foundation
import LMDB
import Metering

/// Where a writer's identity index came from when it opened.
public enum IdentityIndexSource: String, Sendable {
    /// Its snapshot, then the identities LMDB committed after it.
    case snapshot
    /// Every identity in LMDB (no usable snapshot: the first start, a restored or replaced store, a
    /// damaged file; after a crash, the snapshot of an earlier stop is used if there is one).
    case rebuilt
}

extension StoreWriter {
    /// The identity index of `store` and the newest identity stamp in LMDB: from the snapshot the
    /// last writer saved when it belongs to this store's history, else rebuilt from LMDB.
    static func loadIdentityIndex(store: TallyStore, transaction: borrowing ReadTransaction) throws -> (index: IdentityIndex, newestStamp: UInt64, source: IdentityIndexSource) {
        var oldest: UInt64?
        var newest: UInt64 = 0
        try transaction.withCursor(store.identities) { cursor in
            if let first = try cursor.first() { oldest = first.key.loadBigEndianUInt64(at: 0) }
            if let last = try cursor.last() { newest = last.key.loadBigEndianUInt64(at: 0) }
        }
        let started = ContinuousClock.now
        do {
            if let (header, table) = try IdentityIndexSnapshot.load(directory: store.path, accept: { (header) throws(IdentityIndexSnapshot.SnapshotRejection) in
                try checkSnapshot(header, newestInStore: newest, store: store, transaction: transaction)
            }) {
                let index = IdentityIndex(adopting: table, count: header.count, newestStamp: header.newestStamp,
                                          expiredBefore: header.expiredBefore)
                var from: [UInt8] = []
                from.appendBigEndian(header.newestStamp + 1)
                var replayed = 0
                try transaction.withCursor(store.identities) { cursor in
                    try cursor.forEach(startingAt: from) { key, _ in
                        index.insert(Hash128(loading: key, at: 8), stamp: key.loadBigEndianUInt64(at: 0))
                        replayed += 1
                        return true
                    }
                }
                store.logger.info("identity index read from its snapshot", metadata: [
                    "identities": "\(index.count)", "replayed": "\(replayed)", "took": "\(started.duration(to: .now))",
                ])
                return (index, newest, .snapshot)
            }
        } catch let rejection as IdentityIndexSnapshot.SnapshotRejection {
            store.logger.notice("identity index snapshot not used: \(rejection.reason); rebuilding the index from the store", metadata: [
                "snapshot": "\(IdentityIndexSnapshot.path(in: store.path))",
            ])
        }
        let count = try store.environment.statistics(store.identities).entries
        let lowest = oldest ?? UInt64(max(0, Timestamp.now().nanosecondsSinceEpoch / 1_000_000))
        let index = IdentityIndex(minimumCapacity: count + 1024, layout: IdentityIndex.layout(spanning: lowest, through: max(lowest, newest)))
        try transaction.forEach(store.identities, prefix: []) { key, _ in
            index.insert(Hash128(loading: key, at: 8), stamp: key.loadBigEndianUInt64(at: 0))
        }
        return (index, newest, .rebuilt)
    }

    /// Throws why `header` is not a snapshot of this store's current history.
    private static func checkSnapshot(_ header: IdentityIndexSnapshot.Header, newestInStore: UInt64, store: TallyStore,
                                      transaction: borrowing ReadTransaction) throws(IdentityIndexSnapshot.SnapshotRejection) {
        guard header.keyFingerprint == IdentityIndexSnapshot.fingerprint(store.hashKeys) else {
            throw .init("it was saved by another store")
        }
        guard header.newestStamp <= newestInStore else {
            throw .init("it is newer than the store (was the store replaced or restored from a backup?)")
        }
        guard header.newestStamp > 0 else { return }  // an empty index: every identity is replayed
        // The same history: LMDB holds a record under the snapshot's newest stamp.
        var stampKey: [UInt8] = []
        stampKey.appendBigEndian(header.newestStamp)
        let found: Bool
        do {
            found = try transaction.withCursor(store.identities) { cursor in
                try cursor.seek(atLeast: stampKey).map { $0.key.loadBigEndianUInt64(at: 0) == header.newestStamp } ?? false
            }
        } catch {
            throw .init("the store could not be read to check it: \(error)")
        }
        guard found else { throw .init("the store holds no identity from its newest commit (the store was replaced, or those identities expired)") }
    }

    /// Saves the identity index beside the store for the next start (`IdentityIndexSnapshot`). The
    /// daemon calls it after its last commit; a failure costs only the next start's time.
    public func saveIdentityIndex() throws(StoreError) {
        let table = index.settledTable()
        try IdentityIndexSnapshot.save(table, count: index.count, newestStamp: index.newestStamp, expiredBefore: index.expiredBefore,
                                       keyFingerprint: IdentityIndexSnapshot.fingerprint(store.hashKeys), directory: store.path)
    }
}
