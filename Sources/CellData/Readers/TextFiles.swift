import CHDF5
import Foundation

/// Reads a whole text file, gunzipping it when the name ends in ".gz".
func readText(_ path: String) throws -> String {
  guard FileManager.default.fileExists(atPath: path) else { throw CellDataError("\(path): no such file") }
  if !path.hasSuffix(".gz") {
    guard let data = FileManager.default.contents(atPath: path) else { throw CellDataError("\(path): cannot read") }
    return String(decoding: data, as: UTF8.self)
  }
  guard let file = gzopen(path, "rb") else { throw CellDataError("\(path): cannot open") }
  defer { gzclose(file) }
  var bytes: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 1 << 16)
  while true {
    let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
    if n < 0 { throw CellDataError("\(path): corrupt gzip data") }
    if n == 0 { break }
    bytes += chunk[0..<Int(n)]
  }
  return String(decoding: bytes, as: UTF8.self)
}

/// The first of `names` that exists in `directory` (plain or .gz).
func findFile(in directory: String, _ names: [String]) -> String? {
  for name in names {
    for candidate in [name, name + ".gz"] {
      let path = (directory as NSString).appendingPathComponent(candidate)
      if FileManager.default.fileExists(atPath: path) { return path }
    }
  }
  return nil
}

/// Splits text into lines without empty trailing lines.
func lines(_ text: String) -> [Substring] {
  text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
    .filter { !$0.isEmpty }
}
