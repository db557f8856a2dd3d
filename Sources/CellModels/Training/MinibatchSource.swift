/// The minibatches of one pass over a set of cells: what a training or inference loop
/// consumes, whether the rows are in memory (`MinibatchLoader`) or streamed from disk
/// (`StreamingLoader`). A model written against this protocol trains from either.
public protocol MinibatchSource {
  /// Cells in one pass.
  var cellCount: Int { get }
  /// The minibatches of pass `epoch` (every cell exactly once). Reading may fail (a damaged
  /// file), so the stream throws.
  func pass(epoch: Int) throws -> MinibatchStream
}

/// A pass's minibatches, one at a time.
public final class MinibatchStream {
  private let nextBatch: () throws -> Minibatch?
  private let onFinish: () -> Void

  /// `finish` runs when the stream is done with or abandoned (stops a read-ahead thread).
  public init(next: @escaping () throws -> Minibatch?, finish: @escaping () -> Void = {}) {
    nextBatch = next
    onFinish = finish
  }

  deinit { onFinish() }

  /// The next minibatch, or nil at the end of the pass.
  public func next() throws -> Minibatch? { try nextBatch() }
}

extension MinibatchSource {
  /// Runs `body` on each minibatch of pass `epoch`.
  public func forEachBatch(epoch: Int = 0, _ body: (Minibatch) throws -> Void) throws {
    let stream = try pass(epoch: epoch)
    while let batch = try stream.next() { try body(batch) }
  }
}

extension MinibatchLoader: MinibatchSource {
  public var cellCount: Int { dropLast ? batchCount * batchSize : cells.count }

  /// The loader's own order (a new permutation from libtorch's generator when shuffling).
  public func pass(epoch: Int) throws -> MinibatchStream {
    let iterator = makeIterator()
    return MinibatchStream(next: { iterator.next() })
  }
}
