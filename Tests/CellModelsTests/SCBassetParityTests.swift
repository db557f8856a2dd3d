import Foundation
import XCTest

@testable import CellModels
import Torch

/// One case of tests/fixtures/scbasset (make_fixtures.py).
struct SCBassetCase {
  let json: [String: Any]

  init(_ name: String) throws {
    let data = try Data(contentsOf: fixtureURL("scbasset", "\(name).json"))
    json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
  }

  var config: [String: Any] { json["config"] as! [String: Any] }
  var sequences: [String] { json["sequences"] as! [String] }
  func matrix(_ key: String) -> [[Double]] { (json[key] as! [[Any]]).map { $0.map { ($0 as! NSNumber).doubleValue } } }
  var keys: [(String, [Int])] { (json["keys"] as! [[Any]]).map { ($0[0] as! String, $0[1] as! [Int]) } }
  func weights() throws -> StateDict {
    try Safetensors.read(fixtureURL("scbasset", json["weights"] as! String)).tensors
  }

  /// multimolecule's config fields, decoded by SCBassetConfig (as a config.json would be).
  func multimoleculeConfig() throws -> SCBassetConfig {
    try JSONDecoder().decode(SCBassetConfig.self, from: JSONSerialization.data(withJSONObject: config))
  }
}

/// The largest |a − b| over the largest |b|.
func relativeError(_ a: [[Double]], _ b: [[Double]]) -> Double {
  let diff = zip(a.joined(), b.joined()).map { abs($0 - $1) }.max() ?? .infinity
  return diff / max(b.joined().map(abs).max() ?? 0, 1e-12)
}

func rows(_ t: Tensor) -> [[Double]] {
  let values = t.to(.float64).toArray(Double.self)
  let width = t.size(1)
  return (0..<t.size(0)).map { Array(values[($0 * width)..<(($0 + 1) * width)]) }
}

/// splitmix64 weights of make_fixtures.py's `det_values`, bit for bit.
func deterministicValues(key: Int, count: Int, name: String, fanIn: Int) -> [Float] {
  (0..<count).map { i -> Float in
    var z = (UInt64(key) << 32) &+ UInt64(i)
    z = z &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z = z ^ (z >> 31)
    let u = Double(z >> 11) * 0x1p-53
    if name.hasSuffix("running_var") { return Float(0.5 + u) }
    if name.hasSuffix("batch_norm.weight") { return Float(0.8 + 0.4 * u) }
    if name.hasSuffix("weight") { return Float((2 * u - 1) * (3.0 / Double(fanIn)).squareRoot()) }
    return Float((2 * u - 1) * 0.2)
  }
}

final class SCBassetParityTests: XCTestCase {
  override func setUp() { Runtime.seed(0) }

  private func checkMultimolecule(_ name: String, nFill: Float = 0.25) throws {
    let fixture = try SCBassetCase(name)
    var config = try fixture.multimoleculeConfig()
    config.nFill = nFill
    let network = try SCBassetCheckpoint.network(from: try fixture.weights(), config: config)
    XCTAssertEqual(network.stateDict().keys, fixture.keys.map(\.0), "state-dict keys are multimolecule's")
    network.eval()
    let codes = try SCBassetInput.codes(of: fixture.sequences, length: config.sequenceLength)
    let logits = try withTorchErrors { withNoGrad { network(codes: codes) } }
    let error = relativeError(rows(logits), fixture.matrix("logits"))
    print("scBasset parity \(name): max |Δlogit| / max |logit| = \(error)")
    XCTAssertLessThan(error, 1e-4, "\(name): relative logit error \(error)")
    let embedding = withNoGrad { network.regionEmbedding(oneHot: SCBassetInput.oneHot(codes, config: config)) }
    XCTAssertLessThan(relativeError(rows(embedding), fixture.matrix("embedding")), 1e-4)
  }

  func testMultimoleculeSmallFiveChannels() throws { try checkMultimolecule("mm_small") }

  /// multimolecule zeroes N in a 4-channel input: nFill 0.
  func testMultimoleculeSmallFourChannels() throws { try checkMultimolecule("mm_small4", nFill: 0) }

  func testMultimoleculeDefaultShape() throws {
    let name = "mm_default"
    let fixture = try SCBassetCase(name)
    let config = try fixture.multimoleculeConfig()
    XCTAssertEqual(config.towerChannels, [288, 323, 363, 407, 456, 512])
    XCTAssertEqual(config.bottleneckInputSize, 1792)
    let network = try SCBassetNetwork(config)
    let own = network.stateDict()
    XCTAssertEqual(own.keys, fixture.keys.map(\.0))
    var state = StateDict()
    for (key, (name, shape)) in fixture.keys.enumerated() {
      XCTAssertEqual(own[name]!.shape, shape, name)
      if name.hasSuffix("num_batches_tracked") { continue }
      let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
      state[name] = Tensor(deterministicValues(key: key, count: shape.reduce(1, *), name: name, fanIn: fanIn), shape: shape)
    }
    try network.loadStateDict(state, strict: false)
    network.eval()
    let codes = try SCBassetInput.codes(of: fixture.sequences, length: 1344)
    let logits = withNoGrad { network(codes: codes) }
    let error = relativeError(rows(logits), fixture.matrix("logits"))
    print("scBasset parity \(name): max |Δlogit| / max |logit| = \(error)")
    XCTAssertLessThan(error, 1e-4, "relative logit error \(error)")
  }

  func testScviToolsModuleLoadsAndMatches() throws {
    let name = "scvi_small"
    let fixture = try SCBassetCase(name)
    let weights = try fixture.weights()
    XCTAssertEqual(SCBassetCheckpoint.layout(of: weights), .scviTools)
    var config = try SCBassetCheckpoint.inferConfig(weights)
    XCTAssertEqual(config.towerChannels, fixture.config["tower_channels"] as! [Int])
    XCTAssertEqual(config.towerChannels, SCBassetConfig.scviToolsTower(filtersInit: 8, filtersMult: 1.122, repeat: 6))
    XCTAssertEqual(config.nBatch, 2)
    config.l2RegCellEmbedding = 0.1
    let network = try SCBassetCheckpoint.network(from: weights, config: config)
    network.eval()
    let codes = try SCBassetInput.codes(of: fixture.sequences, length: 1344)
    let logits = withNoGrad { network(codes: codes) }
    let error = relativeError(rows(logits), fixture.matrix("logits"))
    print("scBasset parity \(name): max |Δlogit| / max |logit| = \(error)")
    XCTAssertLessThan(error, 1e-4, "relative logit error \(error)")
    let targets = fixture.matrix("targets")
    let target = Tensor(targets.joined().map { Float($0) }, shape: [targets.count, targets[0].count])
    let loss = withNoGrad { network.loss(logits: logits, target: target) }.item()
    XCTAssertEqual(loss, fixture.json["loss"] as! Double, accuracy: 1e-5 * abs(loss))
  }

  func testConfigJSONUsesMultimoleculeNames() throws {
    let data = try JSONEncoder().encode(SCBassetConfig(numLabels: 7))
    let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    XCTAssertEqual(object["tower_channels"] as? [Int], [288, 323, 363, 407, 456, 512])
    XCTAssertEqual(object["num_labels"] as? Int, 7)
    XCTAssertEqual(try JSONDecoder().decode(SCBassetConfig.self, from: data), SCBassetConfig(numLabels: 7))
  }
}
