import Foundation

/// An error of the data layer. The message names the file and, where there is one, the element
/// (for example `obs/cell_type`) so that a user can find what is wrong.
public struct CellDataError: Error, CustomStringConvertible, LocalizedError, Equatable {
  public let message: String

  public init(_ message: String) { self.message = message }

  public var description: String { message }
  public var errorDescription: String? { message }
}

/// Where warnings of the data layer go: a warning is something skipped (an element with an
/// unknown encoding, say) that does not stop the work.
public typealias WarningHandler = @Sendable (String) -> Void

/// Writes a warning line to standard error.
public let printWarningToStandardError: WarningHandler = { message in
  FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}
