import Foundation
import Testing

@testable import Storage

/// A size-limited tmpfs for one test: a file system with room for exactly so much (needs the
/// right to mount, as root in a container has; the tests that need one are skipped without it).
private final class SmallFileSystem {
    let path: String

    init?(bytes: Int) {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tally-small-fs-\(UUID().uuidString.prefix(8))").path
        guard (try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)) != nil,
              Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", path]) else {
            try? FileManager.default.removeItem(atPath: path)
            return nil
        }
    }

    deinit {
        _ = Self.run("/bin/umount", [path])
        try? FileManager.default.removeItem(atPath: path)
    }

    static let isAvailable: Bool = SmallFileSystem(bytes: 1 << 20) != nil

    private static func run(_ tool: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}

@Suite("Backup streaming: no uncompressed copy on the target's file system")
struct BackupStreamingTests {
    /// A store whose data compresses well: 20,000 events with long repetitive properties.
    private func compressibleStore() throws -> TemporaryStore {
        let temporary = try TemporaryStore()
        let pad = String(repeating: "abcdefgh", count: 40)
        for start in stride(from: 0, to: 20_000, by: 1_000) {
            let batch = (start..<(start + 1_000)).map { index in
                pending("e\(index)", customer: "c\(index % 7)", meter: "calls", properties: [.init(key: "pad", value: .string(pad))])
            }
            #expect(try temporary.writer.record(batch).allSatisfy { $0 == .accepted })
        }
        return temporary
    }

    @Test("a target with room for the compressed backup but not for an uncompressed copy takes the backup",
          .enabled(if: SmallFileSystem.isAvailable, "needs the right to mount a tmpfs"))
    func roomForTheCompressedFileOnly() throws {
        let temporary = try compressibleStore()
        let scratch = try BackupScratch()
        let sizes = try #require(try temporary.store.backup(to: scratch.path + "/probe").files.first)
        #expect(sizes.uncompressedSize > 3 * sizes.compressedSize, "the store should compress well: \(sizes)")
        // Room for the compressed file and the manifest, well short of the uncompressed copy.
        let room = (sizes.compressedSize + 256 * 1024 + 4095) / 4096 * 4096
        #expect(room < sizes.uncompressedSize)
        let small = try #require(SmallFileSystem(bytes: room))
        let manifest = try temporary.store.backup(to: small.path + "/backup")
        #expect(manifest.files.first?.uncompressedSize == sizes.uncompressedSize)
        #expect(try FileManager.default.contentsOfDirectory(atPath: small.path + "/backup").sorted() == ["data.mdb.zst", "manifest.json"])
        // What it wrote restores.
        let restored = scratch.path + "/restored"
        _ = try TallyStore.restore(from: small.path + "/backup", to: restored)
        #expect(FileManager.default.fileExists(atPath: restored + "/data.mdb"))
    }

    @Test("a target too small even for the compressed file: a clear error, nothing left behind, the store goes on",
          .enabled(if: SmallFileSystem.isAvailable, "needs the right to mount a tmpfs"))
    func noRoomAtAll() throws {
        let temporary = try compressibleStore()
        let small = try #require(SmallFileSystem(bytes: 16 * 1024))
        let error = #expect(throws: StoreError.self, "the backup should fail on a 16 KiB file system") {
            _ = try temporary.store.backup(to: small.path + "/backup")
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("data.mdb.zst") == true, "\(error?.message ?? "")")
        #expect(!FileManager.default.fileExists(atPath: small.path + "/backup"))
        // The copier thread ended (its pipe drained): the store still takes writes.
        #expect(try temporary.writer.record([pending("after", customer: "c0", meter: "calls")]) == [.accepted])
    }
}
