import Foundation
import XCTest

import Torch

final class SafetensorsTests: XCTestCase {
  var directory: URL!

  override func setUpWithError() throws {
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-\(UUID())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  }
  override func tearDown() { try? FileManager.default.removeItem(at: directory) }

  func testRoundTripKeepsDtypesShapesOrderAndMetadata() throws {
    var dict = StateDict()
    dict["b.weight"] = Tensor.randn([3, 4])
    dict["a.count"] = Tensor([1, 2, 3] as [Int64])
    dict["c.half"] = Tensor.randn([2, 2]).to(.bfloat16)
    dict["d.mask"] = Tensor(bools: [true, false], shape: [2])
    dict["e.scalar"] = Tensor(scalar: 2.5 as Double)
    let url = directory.appendingPathComponent("x.safetensors")
    try Safetensors.write(dict, metadata: ["format": "pt"], to: url)
    let (read, metadata) = try Safetensors.read(url)
    XCTAssertEqual(metadata, ["format": "pt"])
    XCTAssertEqual(read.keys, dict.keys)
    for (key, value) in dict {
      XCTAssertEqual(read[key]!.dtype, value.dtype, key)
      XCTAssertEqual(read[key]!.shape, value.shape, key)
      XCTAssertEqual(read[key]!.to(.float64).toArray(Double.self), value.to(.float64).toArray(Double.self), key)
    }
  }

  func testWritingOverAnExistingFileReplacesIt() throws {
    let url = directory.appendingPathComponent("x.safetensors")
    for value in [1.0, 2.0] {
      var dict = StateDict()
      dict["w"] = Tensor.full([2], value)
      try Safetensors.write(dict, to: url)
      XCTAssertEqual(try Safetensors.read(url).tensors["w"]?.toArray(Float.self), [Float(value), Float(value)])
    }
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
    XCTAssertEqual(leftovers, ["x.safetensors"])
  }

  func testReadsFilesWrittenByPythonSafetensors() throws {
    let (tensors, _) = try Safetensors.read(fixtureURL("torch", "state_dict_io.safetensors"))
    XCTAssertEqual(tensors["x"]?.shape, [5, 4])
    XCTAssertEqual(tensors["y"]?.shape, [5, 3])
  }

  func testTruncatedAndCorruptFilesGiveClearErrors() throws {
    let good = try Data(contentsOf: fixtureURL("torch", "state_dict_io.safetensors"))
    let truncated = good.prefix(good.count - 10)
    XCTAssertThrowsError(try Safetensors.decode(truncated, name: "t.safetensors")) { error in
      XCTAssertTrue("\(error)".contains("outside the data"), "\(error)")
    }
    XCTAssertThrowsError(try Safetensors.decode(Data([1, 2, 3]), name: "tiny")) { error in
      XCTAssertTrue("\(error)".contains("shorter than"), "\(error)")
    }
    var badHeader = Data([8, 0, 0, 0, 0, 0, 0, 0])
    badHeader.append(contentsOf: Array("not json".utf8))
    XCTAssertThrowsError(try Safetensors.decode(badHeader, name: "bad")) { error in
      XCTAssertTrue("\(error)".contains("not a JSON object"), "\(error)")
    }
    XCTAssertThrowsError(try Safetensors.decode(Data([255, 255, 0, 0, 0, 0, 0, 0]), name: "long")) { error in
      XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
    }
  }

  func testFailedWriteLeavesNoFile() throws {
    let url = directory.appendingPathComponent("missing-folder/out.safetensors")
    var dict = StateDict()
    dict["x"] = Tensor.ones([2])
    XCTAssertThrowsError(try Safetensors.write(dict, to: url))
    XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
    XCTAssertEqual(leftovers, [])
  }
}
