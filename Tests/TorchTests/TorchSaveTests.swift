import Foundation
import XCTest

@testable import Torch

/// `TorchFile.save` writes what `TorchFile.load` (and Python's torch.load) reads.
final class TorchSaveTests: XCTestCase {
  private func temporaryFile(_ name: String) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("torchsave-\(UUID())-\(name)")
    addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
  }

  func testStateDictRoundTrip() throws {
    let weights = Tensor((0..<12).map { Float($0) * 0.5 }, shape: [3, 4])
    let state = StateDict([("layer.weight", weights), ("layer.bias", Tensor([1, -2, 3] as [Float])),
                           ("steps", Tensor(scalar: Int64(7))), ("mask", Tensor(bools: [true, false], shape: [2])),
                           ("wide", Tensor([1, 2] as [Double]))])
    let url = temporaryFile("state.pt")
    try TorchFile.save(stateDict: state, to: url)
    let loaded = try TorchFile.loadStateDict(url)
    XCTAssertEqual(loaded.keys, state.keys)
    for (key, tensor) in state {
      let other = try XCTUnwrap(loaded[key], key)
      XCTAssertEqual(other.shape, tensor.shape, key)
      XCTAssertEqual(other.dtype, tensor.dtype, key)
      XCTAssertEqual(other.to(.float64).toArray(Double.self), tensor.to(.float64).toArray(Double.self), key)
    }
  }

  func testNestedValuesAndObjectsRoundTrip() throws {
    let dtype = PickleObject(callable: .global(module: "numpy", name: "dtype"), arguments: [.string("O8"), .bool(false), .bool(true)])
    dtype.state = .tuple([.int(3), .string("|"), .none, .none, .none, .int(-1), .int(-1), .int(63)])
    let value = PickleValue.dict(PickleDict([
      (.string("model_state_dict"), TorchFile.orderedDict([(.string("w"), .tensor(Tensor([1.5, 2.5] as [Float])))])),
      (.string("names"), .list(PickleList([.string("CD3E"), .string("ünïcode")]))),
      (.string("numbers"), .tuple([.int(-3), .int(300), .int(1 << 40), .float(0.25), .none, .bool(true)])),
      (.string("dtype"), .object(dtype)),
      (.string("raw"), .bytes([0, 255, 7])),
    ]))
    let url = temporaryFile("nested.pt")
    try TorchFile.save(value, to: url)
    let loaded = try TorchFile.load(url)
    XCTAssertEqual(loaded["model_state_dict"]?.dict?.value(forKey: "w")?.tensor?.toArray(Float.self), [1.5, 2.5])
    guard case .list(let names)? = loaded["names"] else { return XCTFail("names") }
    XCTAssertEqual(names.items.compactMap(\.string), ["CD3E", "ünïcode"])
    guard case .tuple(let numbers)? = loaded["numbers"] else { return XCTFail("numbers") }
    XCTAssertEqual(numbers.prefix(3).compactMap(\.int), [-3, 300, 1 << 40])
    guard case .float(let quarter) = numbers[3] else { return XCTFail("float") }
    XCTAssertEqual(quarter, 0.25)
    guard case .object(let object)? = loaded["dtype"], case .global(let module, let name) = object.callable else {
      return XCTFail("dtype object")
    }
    XCTAssertEqual("\(module).\(name)", "numpy.dtype")
    XCTAssertEqual(object.arguments.first?.string, "O8")
    guard case .bytes(let raw)? = loaded["raw"] else { return XCTFail("bytes") }
    XCTAssertEqual(raw, [0, 255, 7])
  }

  func testZipCRC32() {
    XCTAssertEqual(ZipWriter.crc32(Array("123456789".utf8)), 0xCBF4_3926)
  }
}
