import Testing

@testable import TallyConfiguration
@testable import Metering

@Suite("store.max_size")
struct StoreSizeConfigTests {
    @Test("sizes with binary units or plain bytes")
    func sizes() throws {
        let config = try ConfigLoader.parse(yaml: """
            store: { path: data, max_size: 64GiB }
            meters: [{ code: calls, aggregation: count }]
            """, fileName: "t.yaml")
        #expect(config.store.maxSizeBytes == 64 << 30)
        #expect(ConfigLoader.byteSize("512MiB") == 512 << 20)
        #expect(ConfigLoader.byteSize("1048576") == 1 << 20)
        #expect(ConfigLoader.byteSize("2KiB") == 2048)
        #expect(ConfigLoader.byteSize("1.5GiB") == nil)
        #expect(ConfigLoader.byteSize("-1") == nil)
        #expect(ConfigLoader.byteSize("99999999999TiB") == nil)
        #expect(try ConfigLoader.parse(yaml: "meters: [{ code: calls, aggregation: count }]", fileName: "t.yaml").store.maxSizeBytes == nil)
    }

    @Test("a size below 1MiB or without a known unit is reported with its line")
    func badSizes() {
        for bad in ["10", "12GB", "lots"] {
            do {
                _ = try ConfigLoader.parse(yaml: "meters: [{ code: calls, aggregation: count }]\nstore:\n  max_size: \(bad)\n", fileName: "t.yaml")
                Issue.record("\(bad) was accepted")
            } catch {
                #expect(error.problems.count == 1)
                #expect(error.problems.first?.line == 3)
                #expect(error.problems.first?.message.contains("MiB") == true)
            }
        }
    }
}
