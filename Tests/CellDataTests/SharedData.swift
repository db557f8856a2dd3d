import Foundation
import XCTest

// One helper for the test targets that read ../shared/data; each such target links this file
// (Tests/<Target>/SharedData.swift is a symbolic link to Tests/Support/SharedData.swift).

/// Data sets of ../shared/data (derived from sources that only GitHub holds, so never committed
/// to the repository; see ../shared/data/README.md), found relative to the package root.
enum SharedData {
  /// The package root: this file is Tests/<Target>/SharedData.swift.
  static let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// The path of ../shared/data/<name>. A test that needs the file FAILS, naming it, when it is
  /// absent: it neither passes nor skips silently.
  static func path(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let url = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data/\(name)")
    guard FileManager.default.fileExists(atPath: url.path) else {
      XCTFail("missing \(url.path): the shared data folder must sit beside the repository (../shared/data)", file: file, line: line)
      throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: url.path])
    }
    return url.path
  }
}
