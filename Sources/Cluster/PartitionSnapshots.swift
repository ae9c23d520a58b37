import Foundation
public import NATS

/// Snapshots of partitions in JetStream, so a node that never held a partition (or lost its disk)
/// starts from the newest one instead of the whole log, and the log can be trimmed below it.
///
/// A snapshot is a partition store's backup (`TallyStore.backup(to:)`: a compacted LMDB copy as
/// zstd frames, with its `manifest.json` of sizes and SHA-256s), published on a stream of its own
/// (`TALLY_SNAPSHOTS`), the way NATS's object store keeps objects (Debian's cnats 3.4 has no
/// object-store API):
///
/// | subject | messages |
/// |---|---|
/// | `tally.snapshots.NNNN.chunks.<id>` | the backup's files, concatenated in manifest order, in chunks of at most `chunkBytes` |
/// | `tally.snapshots.NNNN.manifest` | one JSON `SnapshotManifest` per snapshot, published after its last chunk; only the newest is kept |
///
/// A manifest is published only once every chunk is acknowledged, so a manifest always names a
/// complete snapshot; the previous snapshot's chunks and manifests are purged after it.
public final class PartitionSnapshots: @unchecked Sendable {
    public let stream: JetStream
    public let name: String
    public let subjectPrefix: String
    /// The largest chunk, under NATS's default max_payload (1 MiB) with room for headers.
    public let chunkBytes: Int

    /// Binds to (or creates) the snapshot stream.
    public init(stream: JetStream, name: String = "TALLY_SNAPSHOTS", subjectPrefix: String = "tally.snapshots", replicas: Int,
                chunkBytes: Int = 1_000_000) throws(ClusterError) {
        self.stream = stream
        self.name = name
        self.subjectPrefix = subjectPrefix
        self.chunkBytes = chunkBytes
        do {
            try stream.addStream(.init(name: name, subjects: ["\(subjectPrefix).>"], replicas: replicas))
        } catch {
            throw ClusterError(error, while: "creating the snapshot stream \(name)")
        }
    }

    func manifestSubject(_ partition: Int) -> String { "\(subjectPrefix).\(PartitionMap.name(partition)).manifest" }
    func chunkSubject(_ partition: Int, id: String) -> String { "\(subjectPrefix).\(PartitionMap.name(partition)).chunks.\(id)" }

    /// The partition's newest complete snapshot, nil when it has none.
    public func newest(partition: Int) throws(ClusterError) -> SnapshotManifest? {
        let message: NATSMessage?
        do {
            message = try stream.lastMessage(stream: name, subject: manifestSubject(partition))
        } catch {
            throw ClusterError(error, while: "reading partition \(partition)'s newest snapshot manifest")
        }
        guard let message else { return nil }
        guard let manifest = try? JSONDecoder().decode(SnapshotManifest.self, from: Data(message.payload)), manifest.partition == partition else {
            throw ClusterError(.damaged, "the snapshot manifest at sequence \(message.sequence) of \(name) is not one this version reads")
        }
        return manifest
    }

    /// Publishes the backup in `directory` (its files as `TallyStore.backup(to:)` wrote them) as
    /// partition `partition`'s newest snapshot, covering the log up to `logSequence`, then purges the
    /// snapshot it replaces. Returns the new manifest.
    public func publish(partition: Int, backupDirectory directory: String, logSequence: UInt64, node: String,
                        createdAtMilliseconds: Int64) throws(ClusterError) -> SnapshotManifest {
        let previous = try newest(partition: partition)
        let id = "\(logSequence)-\(node)-\(createdAtMilliseconds)"
        let subject = chunkSubject(partition, id: id)
        var files: [SnapshotManifest.File] = []
        var chunks = 0
        var published = false
        // A snapshot that fails before its manifest leaves no chunks behind.
        defer { if !published { try? stream.purge(stream: name, subject: subject, below: 0) } }
        do {
            for file in try Self.files(in: directory) {
                guard let handle = FileHandle(forReadingAtPath: directory + "/" + file) else {
                    throw ClusterError(.damaged, "cannot read '\(directory)/\(file)' of the snapshot being published")
                }
                defer { try? handle.close() }
                var size = 0
                while let data = try handle.read(upToCount: chunkBytes), !data.isEmpty {
                    _ = try publish(subject: subject, payload: [UInt8](data))
                    size += data.count
                    chunks += 1
                }
                files.append(.init(name: file, size: size))
            }
        } catch let error as ClusterError {
            throw error
        } catch {
            throw ClusterError(.damaged, "reading the snapshot files in '\(directory)' failed: \(error)")
        }
        let manifest = SnapshotManifest(partition: partition, logSequence: logSequence, id: id, node: node,
                                        createdAtMilliseconds: createdAtMilliseconds, chunks: chunks, files: files)
        let encoded: [UInt8]
        do {
            encoded = [UInt8](try JSONEncoder().encode(manifest))
        } catch {
            throw ClusterError(.damaged, "cannot encode a snapshot manifest: \(error)")
        }
        let sequence = try publish(subject: manifestSubject(partition), payload: encoded)
        published = true
        do {
            try stream.purge(stream: name, subject: manifestSubject(partition), below: sequence)
            if let previous, previous.id != id {
                try stream.purge(stream: name, subject: chunkSubject(partition, id: previous.id), below: 0)
            }
        } catch {
            throw ClusterError(error, while: "purging partition \(partition)'s previous snapshot")
        }
        return manifest
    }

    /// Writes the snapshot's files into `directory` (created; it must not exist), checking the
    /// chunk count and every file's size against the manifest: then `TallyStore.restore(from:to:)`
    /// checks their SHA-256s against the backup's own manifest.
    public func download(_ manifest: SnapshotManifest, into directory: String) throws(ClusterError) {
        let subject = chunkSubject(manifest.partition, id: manifest.id)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        } catch {
            throw ClusterError(.damaged, "cannot create '\(directory)' for a snapshot of partition \(manifest.partition): \(error)")
        }
        var next: UInt64 = 1
        var chunks = 0
        var pending: [UInt8] = []
        func nextChunk() throws(ClusterError) -> Bool {
            let message: NATSMessage?
            do {
                message = try stream.nextMessage(stream: name, subject: subject, from: next)
            } catch {
                throw ClusterError(error, while: "reading partition \(manifest.partition)'s snapshot \(manifest.id)")
            }
            guard let message else { return false }
            next = message.sequence + 1
            chunks += 1
            pending += message.payload
            return true
        }
        for file in manifest.files {
            guard !file.name.contains("/") || file.name.split(separator: "/").allSatisfy({ $0 != ".." && !$0.isEmpty }) else {
                throw ClusterError(.damaged, "snapshot \(manifest.id) names a file outside its directory: \(file.name)")
            }
            let path = directory + "/" + file.name
            let parent = (path as NSString).deletingLastPathComponent
            try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                throw ClusterError(.damaged, "cannot create '\(path)' for a snapshot of partition \(manifest.partition)")
            }
            defer { try? handle.close() }
            var remaining = file.size
            while remaining > 0 {
                if pending.isEmpty, try !nextChunk() {
                    throw ClusterError(.damaged, "partition \(manifest.partition)'s snapshot \(manifest.id) ends before its file \(file.name) does: it was purged or is damaged")
                }
                let take = min(remaining, pending.count)
                do {
                    try handle.write(contentsOf: pending[..<take])
                } catch {
                    throw ClusterError(.damaged, "writing '\(path)' failed: \(error)")
                }
                pending.removeFirst(take)
                remaining -= take
            }
        }
        let extra = try nextChunk()
        if !pending.isEmpty || extra || chunks != manifest.chunks {
            throw ClusterError(.damaged, "partition \(manifest.partition)'s snapshot \(manifest.id) has other chunks than its manifest lists (\(chunks) read, \(manifest.chunks) listed)")
        }
    }

    private func publish(subject: String, payload: [UInt8]) throws(ClusterError) -> UInt64 {
        let outcome: JetStream.PublishOutcome
        do {
            outcome = try stream.publish(subject: subject, payload: payload)
        } catch {
            throw ClusterError(error, while: "publishing to \(subject)")
        }
        switch outcome {
        case .stored(let sequence), .duplicate(let sequence): return sequence
        case .fenced: throw ClusterError(.nats, "the snapshot stream refused a publish to \(subject)")
        }
    }

    /// The backup's files, relative to `directory`, sorted, with `manifest.json` last.
    static func files(in directory: String) throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else {
            throw ClusterError(.damaged, "cannot list the snapshot directory '\(directory)'")
        }
        var files: [String] = []
        while let file = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory + "/" + file, isDirectory: &isDirectory), !isDirectory.boolValue { files.append(file) }
        }
        return files.sorted { ($0 == "manifest.json" ? 1 : 0, $0) < ($1 == "manifest.json" ? 1 : 0, $1) }
    }
}

/// The manifest of one partition snapshot in JetStream (`PartitionSnapshots`), as JSON.
public struct SnapshotManifest: Codable, Sendable, Hashable {
    public struct File: Codable, Sendable, Hashable {
        public var name: String
        public var size: Int
    }

    public var partition: Int
    /// The partition's log sequence the snapshot covers: its store holds every message up to it.
    public var logSequence: UInt64
    /// Names the snapshot's chunk subject.
    public var id: String
    /// The node that published it.
    public var node: String
    public var createdAtMilliseconds: Int64
    public var chunks: Int
    public var files: [File]

    enum CodingKeys: String, CodingKey {
        case partition, id, node, chunks, files
        case logSequence = "log_sequence"
        case createdAtMilliseconds = "created_at_ms"
    }
}
