import Foundation
import XCTest

@testable import CellModels
import Torch

/// tests/fixtures/scgpt (make_fixtures.py, scgpt 0.2.4): the model folders, io.safetensors
/// (inputs, outputs, losses, gradients) and tokenize.safetensors (preprocessing, binning,
/// tokenisation cases).
enum ScGPTFixtures {
  static func url(_ file: String) -> URL { fixtureURL("scgpt", file) }
  nonisolated(unsafe) static let io: StateDict = try! Safetensors.read(url("io.safetensors")).tensors
  nonisolated(unsafe) static let tokenize: StateDict = try! Safetensors.read(url("tokenize.safetensors")).tensors
  nonisolated(unsafe) static let cases: [String: Any] = try! JSONSerialization.jsonObject(with: Data(contentsOf: url("cases.json"))) as! [String: Any]

  static func io(_ key: String) -> Tensor {
    guard let t = io[key] else { fatalError("io.safetensors has no '\(key)'") }
    return t
  }
  static func tok(_ key: String) -> Tensor {
    guard let t = tokenize[key] else { fatalError("tokenize.safetensors has no '\(key)'") }
    return t
  }

  /// The fixture's TransformerModel loaded from `folder`, eval mode, ECS threshold 0.8.
  static func model(_ folder: String = "model_folder", skipMismatchedShapes: Bool = false,
                    configure: ((inout ScGPTConfig) -> Void)? = nil) throws -> ScGPTModelFolder {
    let loaded = try ScGPTModelFolder.load(url(folder), skipMismatchedShapes: skipMismatchedShapes, configure: configure)
    loaded.network.ecsThreshold = 0.8
    loaded.network.eval()
    return loaded
  }

  /// Case A (include_zero_gene, no padding) or B (non-zero genes, padded).
  static func batch(_ name: String = "", labels: String? = nil) -> ScGPTBatch {
    let p = name.isEmpty ? "in." : "in.\(name)."
    return ScGPTBatch(geneIds: io(p + "gene_ids"), values: io(p + "values"), paddingMask: io(p + "src_key_padding_mask"),
                      batchLabels: io(labels ?? "in.batch_labels"))
  }
}

/// max |a − b| / max |b|.
func maxRelativeError(_ a: Tensor, _ b: Tensor) -> Double {
  let x = a.detach().to(.float64), y = b.to(.float64)
  precondition(x.shape == y.shape, "shapes \(x.shape) and \(y.shape) differ")
  return (x - y).abs().max().item() / max(y.abs().max().item(), 1e-30)
}

/// Prints `message` when SCGPT_PARITY_VERBOSE is set (the figures behind the parity checks).
func parityLog(_ message: @autoclosure () -> String) {
  if ProcessInfo.processInfo.environment["SCGPT_PARITY_VERBOSE"] != nil { print(message()) }
}

func assertClose(_ a: Tensor, _ b: Tensor, _ what: String, tolerance: Double = 1e-4, file: StaticString = #filePath, line: UInt = #line) {
  let e = maxRelativeError(a, b)
  parityLog("scGPT parity \(what): \(e)")
  XCTAssertLessThan(e, tolerance, "\(what): relative error \(e)", file: file, line: line)
}

func intRows(_ t: Tensor) -> [[Int]] {
  let v = t.to(.int64).toArray(Int64.self).map(Int.init)
  let w = t.size(1)
  return (0..<t.size(0)).map { Array(v[($0 * w)..<(($0 + 1) * w)]) }
}

func floatRows(_ t: Tensor) -> [[Float]] {
  let v = t.to(.float32).toArray(Float.self)
  let w = t.size(1)
  return (0..<t.size(0)).map { Array(v[($0 * w)..<(($0 + 1) * w)]) }
}
