import Foundation
import Logging
import Storage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The append-only NDJSON alert log: one `Alert.json` per line, each alert exactly once.
///
/// Exactly once across crashes: the file is appended and fsynced before the cursor moves, and at
/// most one batch is ever written beyond the stored cursor. So on start, the last complete line of
/// the file names the last alert written; if it is one of the next batch after the cursor, that
/// alert and those before it are already in the file and are skipped. A torn last line (a crash
/// during the write) is cut off first; its alerts are written again.
final class AlertLogSink: AlertSink {
    static let sinkName = "log"
    /// How far back from the end of the file to look for the last complete line.
    static let tailWindow = 64 * 1024

    let name = AlertLogSink.sinkName
    /// An absolute path.
    let path: String
    let batchLimit: Int
    let logger: Logger

    init(path: String, batchLimit: Int, logger: Logger) {
        self.path = path
        self.batchLimit = batchLimit
        self.logger = logger
    }

    func start(cursor: UInt64, store: TallyStore) async throws(DeliveryFailure) -> UInt64 {
        let file = try openFile(flags: O_RDWR)
        defer { close(file.descriptor) }
        guard let lastID = try lastWrittenID(file.descriptor) else { return cursor }
        let next: [Alert]
        do throws(StoreError) {
            next = try store.alerts(after: cursor, limit: batchLimit)
        } catch {
            throw DeliveryFailure("cannot read the alert outbox: \(error.message)")
        }
        guard let written = next.firstIndex(where: { $0.id == lastID }) else { return cursor }
        logger.notice("alert log already holds alerts the cursor had not recorded (a crash after the append); not writing them again", metadata: [
            "sink": "\(name)", "skipped": "\(written + 1)", "through_alert_id": "\(lastID)",
        ])
        return next[written].sequence
    }

    func deliver(_ alerts: [Alert], delivered: (_ count: Int, _ through: UInt64) -> Void) async throws(DeliveryFailure) {
        guard let last = alerts.last else { return }
        var buffer: [UInt8] = []
        for alert in alerts {
            buffer.append(contentsOf: alert.json.utf8)
            buffer.append(UInt8(ascii: "\n"))
        }
        // Reopened for every batch, so a rotated (renamed or deleted) log is recreated.
        let file = try openFile(flags: O_WRONLY | O_APPEND)
        defer { close(file.descriptor) }
        let sizeBefore = lseek(file.descriptor, 0, SEEK_END)
        do throws(DeliveryFailure) {
            try Self.writeAll(file.descriptor, buffer)
            try Self.retryingInterrupts("fsync") { fsync(file.descriptor) }
        } catch {
            // Leave no partial line behind: the next attempt writes the whole batch again.
            if sizeBefore >= 0 { _ = ftruncate(file.descriptor, sizeBefore) }
            throw DeliveryFailure("cannot append to the alert log '\(path)': \(error.message); check the disk and the file's permissions")
        }
        if file.created { syncDirectory() }
        delivered(alerts.count, last.sequence)
    }

    // MARK: Files

    /// Opens the log, creating it (mode 0640, less the umask) and its directory when missing.
    private func openFile(flags: Int32) throws(DeliveryFailure) -> (descriptor: Int32, created: Bool) {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o750])
            } catch {
                throw DeliveryFailure("cannot create the alert log's directory '\(directory)': \(error.localizedDescription); create it or change alerts.log")
            }
        }
        var created = true
        var descriptor = Self.openRetrying(path, flags | O_CREAT | O_EXCL)
        if descriptor < 0, errno == EEXIST {
            created = false
            descriptor = Self.openRetrying(path, flags)
        }
        guard descriptor >= 0 else {
            throw DeliveryFailure("cannot open the alert log '\(path)': \(Self.systemError()); check its permissions or change alerts.log")
        }
        return (descriptor, created)
    }

    private static func openRetrying(_ path: String, _ flags: Int32) -> Int32 {
        while true {
            let descriptor = open(path, flags | O_CLOEXEC, 0o640)
            if descriptor >= 0 || errno != EINTR { return descriptor }
        }
    }

    /// The id of the last complete line, after cutting off a torn last line; nil when the file is
    /// empty or its last line is not an alert.
    private func lastWrittenID(_ descriptor: Int32) throws(DeliveryFailure) -> String? {
        let size = Int(lseek(descriptor, 0, SEEK_END))
        guard size > 0 else { return nil }
        let windowStart = max(0, size - Self.tailWindow)
        var tail = [UInt8](repeating: 0, count: size - windowStart)
        var filled = 0
        while filled < tail.count {
            let count = tail.withUnsafeMutableBytes { bytes in
                pread(descriptor, bytes.baseAddress! + filled, bytes.count - filled, off_t(windowStart + filled))
            }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                throw DeliveryFailure("cannot read the alert log '\(path)': \(count < 0 ? Self.systemError() : "it shrank while being read")")
            }
            filled += count
        }
        let newline = UInt8(ascii: "\n")
        guard let lastNewline = tail.lastIndex(of: newline) else {
            if windowStart == 0 { try cutTornLine(descriptor, keeping: 0, size: size) }
            else { logger.warning("the alert log's last line is longer than 64 KiB: not an alert; appending after it", metadata: ["sink": "\(name)"]) }
            return nil
        }
        if lastNewline != tail.count - 1 {
            try cutTornLine(descriptor, keeping: windowStart + lastNewline + 1, size: size)
        }
        let lineStart = tail[..<lastNewline].lastIndex(of: newline).map { $0 + 1 } ?? 0
        if lineStart == 0, windowStart > 0 { return nil }
        let line = Data(tail[lineStart..<lastNewline])
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any], let id = object["id"] as? String else {
            logger.warning("the alert log's last line is not an alert: appending after it", metadata: ["sink": "\(name)"])
            return nil
        }
        return id
    }

    private func cutTornLine(_ descriptor: Int32, keeping length: Int, size: Int) throws(DeliveryFailure) {
        logger.warning("the alert log ends with an incomplete line (a crash during a write): cutting it off; its alerts are written again", metadata: [
            "sink": "\(name)", "bytes_removed": "\(size - length)",
        ])
        guard ftruncate(descriptor, off_t(length)) == 0 else {
            throw DeliveryFailure("cannot cut the incomplete last line off the alert log '\(path)': \(Self.systemError())")
        }
        do throws(DeliveryFailure) {
            try Self.retryingInterrupts("fsync") { fsync(descriptor) }
        } catch {
            throw DeliveryFailure("cannot sync the alert log '\(path)': \(error.message)")
        }
    }

    /// Makes a newly created log's directory entry durable.
    private func syncDirectory() {
        let directory = (path as NSString).deletingLastPathComponent
        let descriptor = Self.openRetrying(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) throws(DeliveryFailure) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                write(descriptor, buffer.baseAddress! + written, buffer.count - written)
            }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw DeliveryFailure("write: \(count < 0 ? systemError() : "no progress")") }
            written += count
        }
    }

    private static func retryingInterrupts(_ call: String, _ body: () -> Int32) throws(DeliveryFailure) {
        while body() != 0 {
            if errno != EINTR { throw DeliveryFailure("\(call): \(systemError())") }
        }
    }

    private static func systemError() -> String { String(cString: strerror(errno)) }
}
