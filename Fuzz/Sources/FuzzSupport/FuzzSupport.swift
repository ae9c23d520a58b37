import CLibFuzzer

/// What every fuzz target shares: handing `main` to libFuzzer, and checking properties.
///
/// SwiftPM links each executable with `--defsym main=<Module>_main`, so every target defines that
/// symbol and passes its test function to libFuzzer's driver:
///
/// ```swift
/// @_cdecl("FuzzDecimal_main")
/// func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
///     FuzzDriver.run(argc, argv, fuzzOneInput)
/// }
/// ```
public enum FuzzDriver {
    /// Runs libFuzzer with the process's arguments (`-max_total_time=60 CORPUS…`) over `test`.
    public static func run(
        _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
        _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt {
        var argc = argc
        var argv = argv
        return LLVMFuzzerRunDriver(&argc, &argv, test)
    }

    /// The input as a buffer (libFuzzer passes a null pointer for the empty input).
    public static func buffer(_ start: UnsafePointer<UInt8>?, _ count: Int) -> UnsafeRawBufferPointer {
        guard let start, count > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: start, count: count)
    }
}

/// Stops the process (a crash to libFuzzer, which saves the input) when a property does not hold.
public func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
    if !condition { fatalError("property violated: \(message())", file: file, line: line) }
}
