import ArgumentParser
import TallyConfiguration
import Foundation
import Metering
import Rating

/// `tally quote`: rates one quantity with one price and prints the rating as one line of JSON.
/// The work is `Rating.Quote` (pure, unit-tested); this command only reads `--price` from a file
/// when one exists and prints.
struct QuoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quote",
        abstract: "Price one quantity with one price and print the rating as JSON.",
        discussion: """
            Prints one line of JSON: {"quantity","currency","amount","exact_amount","lines":[{"tier","quantity","unit_amount","flat_amount","amount"}]}, every number a decimal string ("tier" is a number, or null for untiered models). "amount" is the exact amount rounded once to the currency's minor unit (USD "39.00", JPY "1235"); "exact_amount" and the lines are exact. A minimum or maximum shows as a last line with tier null and quantity 0.

            --price is a file when a file of that name exists, otherwise the price itself, as JSON or YAML with the keys of a price in the config: model (per_unit, graduated, volume, package, flat), unit_amount, free_units, transform, tiers, package_size, package_amount, round, amount, minimum, maximum, dimensions. Mistakes are reported with their line and column, and the exit status is 1.

            Examples:
              tally quote --quantity 2500 --price '{"model":"flat","amount":"49.00"}'
              tally quote --quantity 150 --price '{model: per_unit, unit_amount: 10}'
              tally quote --quantity 12.5 --currency JPY --rounding half_even --price p.yml
              tally quote --quantity 6 --price price.yaml     # with price.yaml:
                model: graduated
                tiers:
                  - { up_to: 5, unit_amount: "7.00" }
                  - { up_to: inf, unit_amount: "6.50", flat_amount: "1" }
            """
    )

    @Option(name: .long, help: ArgumentHelp("The price: a JSON or YAML file, or the price itself inline.", valueName: "json-or-yaml-or-file"))
    var price: String

    @Option(name: .long, help: ArgumentHelp("The quantity to rate, a decimal such as 1500 or 2.75.", valueName: "quantity"))
    var quantity: String

    @Option(name: .long, help: ArgumentHelp("The ISO 4217 currency the amount is rounded to.", valueName: "code"))
    var currency: String = "USD"

    @Option(name: .long, help: ArgumentHelp("half_away_from_zero or half_even.", valueName: "mode"))
    var rounding: String = RoundingMode.halfAwayFromZero.rawValue

    @Option(name: .long, help: ArgumentHelp(
        "A group of a meter with group_by, to apply the price's dimensions (repeatable).", valueName: "property=value"))
    var group: [String] = []

    func run() throws {
        do {
            let (text, source) = try Self.priceText(price)
            let quote = try Self.quote(
                priceText: text, sourceName: source, quantity: quantity, currency: currency, rounding: rounding, group: group)
            print(quote.json)
        } catch let error as QuoteError {
            printError(error.message)
            throw ExitCode.failure
        } catch let error as CommandFailure {
            printError(error.description)
            throw ExitCode.failure
        }
    }

    /// Reads the price text (JSON or YAML, with the config file's validation) and rates the quantity.
    ///
    /// - Throws: `QuoteError`: `invalid_price` with every problem of the price, or the problem with
    ///   another argument.
    static func quote(
        priceText: String, sourceName: String, quantity: String, currency: String, rounding: String, group: [String]
    ) throws(QuoteError) -> Quote {
        let price: Price
        do {
            price = try PriceParser.parse(priceText, sourceName: sourceName)
        } catch {
            throw QuoteError(code: .invalidPrice, message: "the price has problems:\n\(error.description)")
        }
        return try Quote.parse(price: price, quantity: quantity, currency: currency, rounding: rounding, group: group)
    }

    /// The price text and the name to report problems under: the file's contents when `argument`
    /// names a file, otherwise `argument` itself.
    static func priceText(_ argument: String) throws -> (text: String, source: String) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
            return (argument, "--price")
        }
        guard !isDirectory.boolValue else {
            throw CommandFailure("--price \(argument) is a directory; pass a price file, or the price as JSON or YAML")
        }
        guard let data = FileManager.default.contents(atPath: argument) else {
            throw CommandFailure("cannot read the price file \(argument); check its permissions")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CommandFailure("the price file \(argument) is not UTF-8 text; save it as UTF-8")
        }
        return (text, argument)
    }
}
