import Foundation
import XCTest

@testable import CellModels
import Torch

/// Bounded mutation runs over the scGPT readers (vocab.json, args.json, a model folder): every
/// mutated input either loads or throws; none crashes, hangs or allocates without bound.
final class ScGPTFuzzTests: XCTestCase {
  /// splitmix64, so that a failing case can be replayed from its index.
  private struct Mutator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }

    /// Flips, replaces, inserts or deletes a few bytes, or truncates; digits are favoured so
    /// that numbers change.
    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
      var bytes = input
      let interesting = Array("0123456789-.eE{}[]\":,tfn ".utf8)
      for _ in 0...below(4) {
        guard !bytes.isEmpty else { break }
        let i = below(bytes.count)
        switch below(6) {
        case 0: bytes[i] ^= UInt8(1 << below(8))
        case 1: bytes[i] = interesting[below(interesting.count)]
        case 2: bytes.insert(interesting[below(interesting.count)], at: i)
        case 3: bytes.remove(at: i)
        case 4: bytes.replaceSubrange(i..<bytes.count, with: bytes[i..<min(bytes.count, i + below(8))])
        default: bytes.insert(contentsOf: Array("99999999".utf8), at: i)
        }
      }
      return bytes
    }
  }

  func testMutatedVocabulariesLoadOrThrow() throws {
    let original = Array(try Data(contentsOf: ScGPTFixtures.url("model_folder/vocab.json")))
    var mutator = Mutator(state: 1)
    var loaded = 0
    for _ in 0..<400 {
      if let vocab = try? GeneVocab(json: Data(mutator.mutate(original))) {
        loaded += 1
        XCTAssertEqual(Set(vocab.tokens.indices.map { vocab[vocab.tokens[$0]]! }), Set(vocab.tokens.indices))
      }
    }
    XCTAssertGreaterThan(loaded, 0)
  }

  func testMutatedArgsLoadOrThrow() throws {
    let source = ScGPTFixtures.url("model_folder")
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scgpt-fuzz-\(UUID().uuidString)")
    try FileManager.default.copyItem(at: source, to: dir)
    defer { try? FileManager.default.removeItem(at: dir) }
    let original = Array(try Data(contentsOf: source.appendingPathComponent("args.json")))
    var mutator = Mutator(state: 2)
    var loaded = 0
    for _ in 0..<120 {
      try Data(mutator.mutate(original)).write(to: dir.appendingPathComponent("args.json"))
      if (try? ScGPTModelFolder.load(dir)) != nil { loaded += 1 }
    }
    XCTAssertGreaterThan(loaded, 0)
  }
}
