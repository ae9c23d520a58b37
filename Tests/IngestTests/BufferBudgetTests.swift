import Foundation
@testable import Ingest
import Testing

@Suite("The buffer budget (ingest.max_buffered_bytes)")
struct BufferBudgetTests {
    @Test("past the budget the heaviest connections pause, a light one reads on, and pausers wake below seven eighths")
    func socketConnections() {
        let budget = BufferBudget(limit: 1000)
        #expect(budget.mayRead(holding: 0))
        budget.charge(600, holding: 0)          // connection A
        budget.charge(500, holding: 0)          // connection B
        #expect(budget.bufferedBytes == 1100)
        #expect(!budget.mayRead(holding: 600))  // A holds more than a quarter of its share (1000 / 2 / 4)
        #expect(!budget.mayRead(holding: 500))
        #expect(budget.mayRead(holding: 0))     // a producer that waits for its answers still gets in
        #expect(budget.mayRead(holding: 100))

        let woken = Counter()
        budget.park { woken.add() }
        budget.park { woken.add() }
        #expect(woken.value == 0)
        budget.release(100, remaining: 400)     // 1000: still full
        #expect(woken.value == 0)
        budget.release(100, remaining: 300)     // 900: above seven eighths
        #expect(woken.value == 0)
        budget.release(100, remaining: 200)     // 800: room
        #expect(woken.value == 2)
        budget.park { woken.add() }             // room now: woken at once
        #expect(woken.value == 3)
        budget.release(200, remaining: 0)
        budget.release(600, remaining: 0)
        #expect(budget.bufferedBytes == 0)
    }

    @Test("request bodies past the budget wait for room, except the oldest, so bodies never wait for each other")
    func requestBodies() async {
        let budget = BufferBudget(limit: 1000)
        let first = budget.beginBody()
        let second = budget.beginBody()
        await budget.charge(1500, body: first)   // below the budget when it asks: charged at once
        let granted = Counter()
        let waiting = Task {
            await budget.charge(100, body: second)  // past the budget and not the oldest: waits
            granted.add()
        }
        try? await Task.sleep(for: .milliseconds(50))
        #expect(granted.value == 0)
        budget.endBody(first)                     // the second is the oldest body now
        await waiting.value
        #expect(granted.value == 1)
        #expect(budget.bufferedBytes == 1600)
        budget.endBody(second)
        budget.release(1500)
        budget.release(100)
        #expect(budget.bufferedBytes == 0)
    }

    @Test("the oldest body goes on even when it asked for room after younger ones (the flood test hung on it)")
    func oldestBodyBehindYoungerWaiters() async {
        let budget = BufferBudget(limit: 1000)
        let first = budget.beginBody()
        let second = budget.beginBody()
        let third = budget.beginBody()
        await budget.charge(1500, body: first)
        let granted = Counter()
        let youngest = Task {
            await budget.charge(100, body: third)   // waits first, in front of the second
            granted.add()
        }
        try? await Task.sleep(for: .milliseconds(50))
        let older = Task {
            await budget.charge(100, body: second)
            granted.add()
        }
        try? await Task.sleep(for: .milliseconds(50))
        #expect(granted.value == 0)
        budget.endBody(first)                        // the second is the oldest now, behind the third
        await older.value
        #expect(granted.value == 1)
        budget.endBody(second)                       // then the third is
        await youngest.value
        #expect(granted.value == 2)
        budget.endBody(third)
        budget.release(1700)
        #expect(budget.bufferedBytes == 0)
    }

    @Test("a waiting body is granted when answered work frees room")
    func bodyWaitsForRoom() async {
        let budget = BufferBudget(limit: 1000)
        budget.charge(1200, holding: 0)           // a socket connection's reads
        let older = budget.beginBody()
        let body = budget.beginBody()
        let granted = Counter()
        let waiting = Task {
            await budget.charge(300, body: body)
            granted.add()
        }
        _ = older
        try? await Task.sleep(for: .milliseconds(50))
        #expect(granted.value == 0)
        budget.release(500, remaining: 700)       // 700: room
        await waiting.value
        #expect(granted.value == 1)
        #expect(budget.bufferedBytes == 1000)
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func add() { lock.withLock { count += 1 } }
}
