import Foundation
import Torch

/// scGPT's gene vocabulary (`scgpt.tokenizer.GeneVocab`): tokens with consecutive ids 0..<n,
/// stored as `vocab.json` (`{token: id}`). Unknown genes map to the default id, `<pad>`'s id
/// when the vocabulary has `<pad>` (as the reference sets it).
public struct GeneVocab: Equatable, Sendable {
  /// The special tokens official model folders carry, in the order loaders append them.
  public static let specialTokens = ["<pad>", "<cls>", "<eoc>"]

  /// Tokens by id (torchtext's `itos`).
  public private(set) var tokens: [String]
  private var ids: [String: Int]

  /// Tokens in id order; duplicates are an error.
  public init(tokens: [String]) throws {
    var ids: [String: Int] = [:]
    for (i, token) in tokens.enumerated() {
      guard ids.updateValue(i, forKey: token) == nil else {
        throw ScGPTError.vocabulary("token '\(token)' appears twice")
      }
    }
    self.tokens = tokens
    self.ids = ids
  }

  /// The reference constructor `GeneVocab(gene_list, specials, special_first)`: genes ordered
  /// by count (descending), ties by name (code-point order), so unique genes come out sorted;
  /// specials first or last in the given order.
  public init(genes: [String], specials: [String] = [], specialFirst: Bool = true) throws {
    var counts: [String: Int] = [:]
    for gene in genes { counts[gene, default: 0] += 1 }
    for special in specials { counts[special] = nil }
    let ordered = counts.sorted { a, b in
      a.value != b.value ? a.value > b.value : Array(a.key.unicodeScalars.map(\.value)).lexicographicallyPrecedes(b.key.unicodeScalars.map(\.value))
    }.map(\.key)
    try self.init(tokens: specialFirst ? specials + ordered : ordered + specials)
  }

  /// Reads `vocab.json`: one JSON object `{token: id}` whose ids are exactly 0..<n.
  public init(contentsOf url: URL) throws {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw ScGPTError.vocabulary("cannot read \(url.path): \(error.localizedDescription)")
    }
    try self.init(json: data, source: url.lastPathComponent)
  }

  public init(json data: Data, source: String = "vocab.json") throws {
    let dict: [String: Int]
    do { dict = try JSONDecoder().decode([String: Int].self, from: data) } catch {
      throw ScGPTError.vocabulary("\(source) must hold one JSON object {token: integer id}: \(error)")
    }
    var byId = [String?](repeating: nil, count: dict.count)
    for (token, id) in dict.sorted(by: { ($0.value, $0.key) < ($1.value, $1.key) }) {
      guard id >= 0, id < dict.count else {
        throw ScGPTError.vocabulary(
          "\(source): ids must be consecutive 0..<\(dict.count), but '\(token)' has id \(id)")
      }
      if let other = byId[id] {
        throw ScGPTError.vocabulary("\(source): '\(other)' and '\(token)' share id \(id); ids must be consecutive 0..<\(dict.count)")
      }
      byId[id] = token
    }
    try self.init(tokens: byId.map { $0! })
  }

  public var count: Int { tokens.count }

  /// The id of `token`, or nil when it is not in the vocabulary.
  public subscript(token: String) -> Int? { ids[token] }
  public func contains(_ token: String) -> Bool { ids[token] != nil }

  /// What an unknown token maps to: `<pad>`'s id, or nil when the vocabulary has no `<pad>`
  /// (then the reference raises on unknown tokens).
  public var defaultId: Int? { ids["<pad>"] }

  /// Appends `token` with the next id (no-op when present); returns whether it was added.
  @discardableResult
  public mutating func append(_ token: String) -> Bool {
    guard ids[token] == nil else { return false }
    ids[token] = tokens.count
    tokens.append(token)
    return true
  }

  /// Appends those of `specials` that are missing, at the end, as the reference's loaders do;
  /// returns the tokens appended.
  @discardableResult
  public mutating func appendMissingSpecials(_ specials: [String] = GeneVocab.specialTokens) -> [String] {
    specials.filter { append($0) }
  }

  /// `{token: id}` in id order, indented by 2 as `GeneVocab.save_json` writes it.
  public func jsonData() throws -> Data {
    var text = "{\n"
    for (i, token) in tokens.enumerated() {
      let key = try String(decoding: JSONSerialization.data(withJSONObject: token, options: .fragmentsAllowed), as: UTF8.self)
      text += "  \(key): \(i)" + (i + 1 < tokens.count ? ",\n" : "\n")
    }
    return Data((text + "}").utf8)
  }

  /// Writes `vocab.json` atomically.
  public func write(to url: URL) throws { try writeAtomically(try jsonData(), to: url) }

  /// Maps gene names to ids; unknown genes get the default id (`<pad>`'s) and are counted.
  /// Throws when none of the genes is known, or when some are unknown and there is no `<pad>`.
  public func match(_ genes: [String]) throws -> GeneMatch {
    var result = GeneMatch(ids: [], known: [], unknownGenes: [])
    for gene in genes {
      if let id = ids[gene] {
        result.ids.append(id)
        result.known.append(true)
      } else {
        result.ids.append(defaultId ?? -1)
        result.known.append(false)
        result.unknownGenes.append(gene)
      }
    }
    if !genes.isEmpty && result.unknownGenes.count == genes.count {
      throw ScGPTError.vocabulary(
        "none of the \(genes.count) genes is in the vocabulary of \(count) tokens (first: '\(genes[0])'); check the gene names or the gene column")
    }
    if !result.unknownGenes.isEmpty && defaultId == nil {
      throw ScGPTError.vocabulary(
        "\(result.unknownGenes.count) genes are not in the vocabulary (first: '\(result.unknownGenes[0])') and it has no <pad> to map them to")
    }
    return result
  }
}

/// Genes matched to a vocabulary: one id per gene (unknown ones get `<pad>`'s id).
public struct GeneMatch: Equatable, Sendable {
  public var ids: [Int]
  public var known: [Bool]
  public var unknownGenes: [String]

  public var unknownCount: Int { unknownGenes.count }
  /// A one-line report: "1,234 of 2,000 genes are in the vocabulary; 766 are not (first: …)".
  public var summary: String {
    let n = ids.count, k = n - unknownCount
    guard unknownCount > 0 else { return "all \(n) genes are in the vocabulary" }
    return "\(k) of \(n) genes are in the vocabulary; \(unknownCount) are not (first: \(unknownGenes.prefix(5).joined(separator: ", ")))"
  }
}
