import Foundation
import XCTest

import Torch

final class StateDictTests: XCTestCase {
  /// Sequential(Linear(4, 8), BatchNorm1d(8), ReLU(), Linear(8, 3)) as in make_fixtures.py.
  func makeModel() -> Sequential { Sequential(Linear(4, 8), BatchNorm1d(8), ReLU(), Linear(8, 3)) }

  func testTorchSaveStateDictLoadsByNameAndGivesTheSameOutput() throws {
    let dict = try TorchFile.loadStateDict(fixtureURL("torch", "state_dict.pt"))
    XCTAssertEqual(dict.keys, [
      "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
      "2.weight", "2.bias",
    ].map { $0.replacingOccurrences(of: "2.", with: "3.") })
    let model = makeModel()
    let (missing, unexpected) = try model.loadStateDict(dict)
    XCTAssertEqual(missing, [])
    XCTAssertEqual(unexpected, [])
    XCTAssertEqual(model.stateDict()["1.num_batches_tracked"]?.item(), 7)
    model.eval()
    let io = try Safetensors.read(fixtureURL("torch", "state_dict_io.safetensors")).tensors
    assertClose(withNoGrad { model(io["x"]!) }, io["y"]!, "output after loading torch.save weights")
  }

  func testStrictLoadReportsMissingAndUnexpectedKeysAndChangesNothing() throws {
    let model = makeModel()
    let before = model.stateDict()["0.weight"]!.clone()
    var dict = try TorchFile.loadStateDict(fixtureURL("torch", "state_dict.pt"))
    dict["0.weight"] = Tensor.zeros([8, 4])
    dict["3.bias"] = nil
    dict["extra.weight"] = Tensor.zeros([1])
    XCTAssertThrowsError(try model.loadStateDict(dict)) { error in
      let text = "\(error)"
      XCTAssertTrue(text.contains("3.bias") && text.contains("extra.weight"), text)
    }
    assertClose(model.stateDict()["0.weight"]!, before, "a failed strict load must not modify the model")
    let (missing, unexpected) = try model.loadStateDict(dict, strict: false)
    XCTAssertEqual(missing, ["3.bias"])
    XCTAssertEqual(unexpected, ["extra.weight"])
    XCTAssertEqual(model.stateDict()["0.weight"]!.abs().sum().item(), 0)
  }

  func testShapeMismatchIsAClearError() throws {
    let model = makeModel()
    var dict = model.stateDict()
    dict["0.weight"] = Tensor.zeros([8, 5])
    XCTAssertThrowsError(try model.loadStateDict(dict)) { error in
      XCTAssertTrue("\(error)".contains("shape mismatch for '0.weight'"), "\(error)")
    }
  }

  func testKeyRemapping() throws {
    let dict = try TorchFile.loadStateDict(fixtureURL("torch", "state_dict.pt"))
    let prefixed = dict.mapKeys { "model.encoder." + $0 }
    let model = makeModel()
    try model.loadStateDict(prefixed) { key in
      key.hasPrefix("model.encoder.") ? String(key.dropFirst("model.encoder.".count)) : nil
    }
    assertClose(model.stateDict()["3.bias"]!, dict["3.bias"]!, "remapped key loaded")
  }

  func testNonZipTorchFileIsAClearError() throws {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-checkpoint-\(UUID()).pt")
    try Data("hello".utf8).write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    XCTAssertThrowsError(try TorchFile.loadStateDict(url)) { error in
      XCTAssertTrue("\(error)".contains("not a zip-format torch.save file"), "\(error)")
    }
    XCTAssertThrowsError(try TorchFile.loadStateDict(url.appendingPathExtension("missing")))
  }

  func testTrainEvalAndDeviceMoveKeepIdentity() {
    let model = makeModel()
    let weight = model.parameters[0]
    model.eval()
    XCTAssertFalse(model.children[1].module.isTraining)
    model.to(.cpu, dtype: .float64)
    XCTAssertTrue(model.parameters[0] === weight)
    XCTAssertEqual(weight.dtype, .float64)
    XCTAssertTrue(weight.requiresGrad)
    XCTAssertEqual(model.stateDict()["1.num_batches_tracked"]?.dtype, .int64)
  }
}

final class TorchFileTests: XCTestCase {
  func testNestedCheckpointWithNumpyValues() throws {
    let dict = try TorchFile.loadStateDict(fixtureURL("torch", "nested.pt"))
    XCTAssertEqual(dict["model_state_dict.0.weight"]?.shape, [8, 4])
    XCTAssertEqual(dict.scoped("model_state_dict").count, 9)
    let object = try TorchFile.load(fixtureURL("torch", "nested.pt"))
    XCTAssertEqual(object["attr_dict"]?["n_latent"]?.int, 10)
    guard case .object(let names)? = object["var_names"] else { return XCTFail("var_names is not an object") }
    guard case .tuple(let state) = names.state, case .list(let values) = state.last else {
      return XCTFail("numpy state not read")
    }
    XCTAssertEqual(values.items.compactMap(\.string), ["CD3E", "MS4A1"])
  }

  func testTruncatedCheckpointIsAClearError() throws {
    let full = try Data(contentsOf: fixtureURL("torch", "state_dict.pt"))
    for length in [full.count / 2, full.count - 30, 10] {
      let url = FileManager.default.temporaryDirectory.appendingPathComponent("truncated-\(UUID()).pt")
      try full.prefix(length).write(to: url)
      defer { try? FileManager.default.removeItem(at: url) }
      XCTAssertThrowsError(try TorchFile.loadStateDict(url), "length \(length)") { error in
        XCTAssertTrue("\(error)".contains("truncated") || "\(error)".contains("not a zip"), "\(error)")
      }
    }
  }
}
