import CellData
import Foundation
import Genomics
import Torch

/// Minibatches streamed from a `RowBlockSource` (a backed .h5ad or a collection of them) with
/// memory bounded by a buffer, as scDataset / MappedCollection-style block shuffling:
///
/// 1. the source's rows are cut into blocks of `blockRows` contiguous rows, and the blocks
///    holding selected cells are put in a random order (per epoch);
/// 2. `bufferBlocks` blocks at a time are read (in file order, so that a compressed chunk
///    shared by two neighbouring blocks is decompressed once, from the chunk cache), their
///    selected rows shuffled together, and cut into minibatches;
/// 3. a background thread reads the next buffer while the model trains on the current one.
///
/// Every selected cell is in exactly one minibatch per pass; the same seed and epoch give the
/// same order (a seeded xoshiro generator, independent of libtorch's). Without `shuffle`,
/// cells come in row order. Rows held: the buffer being consumed, one read ahead and the one
/// being read — about 3 × blockRows × bufferBlocks cells in CSR form.
public final class StreamingLoader: MinibatchSource {
  public struct Options: Sendable {
    public var batchSize: Int
    public var blockRows: Int
    public var bufferBlocks: Int
    public var shuffle: Bool
    /// Drop the last minibatch of a pass when it is partial.
    public var dropLast: Bool
    public var seed: UInt64
    /// Read the next buffer on a background thread.
    public var readAhead: Bool
    /// Data-parallel training: this rank's share of the blocks (nil: every block).
    public var shard: Shard?

    /// Defaults: blocks of 256 rows, 32 blocks (8,192 cells) shuffled together.
    public init(batchSize: Int = 128, blockRows: Int = 256, bufferBlocks: Int = 32, shuffle: Bool = true,
                dropLast: Bool = false, seed: UInt64 = 0, readAhead: Bool = true, shard: Shard? = nil) {
      self.shard = shard
      self.batchSize = batchSize
      self.blockRows = blockRows
      self.bufferBlocks = bufferBlocks
      self.shuffle = shuffle
      self.dropLast = dropLast
      self.seed = seed
      self.readAhead = readAhead
    }
  }

  /// `options` for one kind of pass: its batch size, shuffling and seed; a pass in file order
  /// keeps at most 4 blocks per buffer, since a big buffer only serves shuffling.
  public static func passOptions(_ options: Options, batchSize: Int, shuffle: Bool, seed: UInt64) -> Options {
    var options = options
    options.batchSize = batchSize
    options.shuffle = shuffle
    options.seed = seed
    if !shuffle { options.bufferBlocks = Swift.min(options.bufferBlocks, 4) }
    return options
  }

  /// A rank's share of a pass, as torch's DistributedSampler at the granularity of blocks (so
  /// each rank reads whole blocks, never the others'): the pass's block order (the same on
  /// every rank: it depends on the seed and epoch only) is dealt out, block k to rank
  /// k mod worldSize.
  public struct Shard: Sendable, Equatable {
    public var rank: Int
    public var worldSize: Int
    /// For training: the block list is padded to a multiple of worldSize by repeating its first
    /// blocks, and every rank's pass is cut to the cell count of the rank with fewest (minus one
    /// when that would leave a 1-cell last minibatch, which BatchNorm cannot take), so every
    /// rank takes the same number of equal-sized steps (a few cells of each pass are left out,
    /// different ones each epoch). Without it (evaluation) each block is read once by one rank
    /// and sums over the ranks count every cell once.
    public var equalize: Bool

    public init(rank: Int, worldSize: Int, equalize: Bool = true) {
      self.rank = rank
      self.worldSize = worldSize
      self.equalize = equalize
    }
  }

  /// Checks each block as it is read (first row of the block, its rows); throws to stop the pass.
  public typealias BlockCheck = @Sendable (_ firstRow: Int, _ rows: CSRRows) throws -> Void

  public let source: RowBlockSource
  public let options: Options
  /// Cells per pass (when sharded with `equalize`, of the first pass: later ones may differ by
  /// a few cells).
  public private(set) var cellCount: Int
  private let selected: [Bool]?
  private let blocks: [Range<Int>]
  /// Selected cells per block of `blocks`.
  private let blockCells: [Int]
  private let batchCodes: [Int64]?
  private let labelCodes: [Int64]?
  private let check: BlockCheck?

  /// - Parameters:
  ///   - cells: the source rows of a pass (all when nil); order does not matter.
  ///   - batchCodes, labelCodes: one code per source row.
  public init(source: RowBlockSource, cells: [Int]? = nil, batchCodes: [Int]? = nil, labelCodes: [Int]? = nil,
              options: Options = Options(), check: BlockCheck? = nil) throws {
    guard options.batchSize > 0, options.blockRows > 0, options.bufferBlocks > 0 else {
      throw TrainingError.invalidOptions("batch size, block rows and buffer blocks must be positive")
    }
    if let shard = options.shard, shard.worldSize < 1 || shard.rank < 0 || shard.rank >= shard.worldSize {
      throw TrainingError.invalidOptions("rank \(shard.rank) is outside 0..<\(shard.worldSize)")
    }
    let n = source.nRows
    for (name, codes) in [("batch", batchCodes), ("label", labelCodes)] {
      if let codes, codes.count != n { throw CellDataError("\(codes.count) \(name) codes for \(n) cells") }
    }
    var selected: [Bool]?
    if let cells {
      var mask = [Bool](repeating: false, count: n)
      for cell in cells {
        guard cell >= 0, cell < n else { throw CellDataError("cell \(cell) is outside the source's \(n) rows") }
        guard !mask[cell] else { throw CellDataError("cell \(cell) is selected twice") }
        mask[cell] = true
      }
      selected = mask
    }
    var blocks: [Range<Int>] = [], blockCells: [Int] = []
    for start in stride(from: 0, to: n, by: options.blockRows) {
      let block = start..<Swift.min(start + options.blockRows, n)
      let cells = selected.map { mask in block.reduce(0) { $0 + (mask[$1] ? 1 : 0) } } ?? block.count
      if cells == 0 { continue }
      blocks.append(block)
      blockCells.append(cells)
    }
    self.source = source
    self.options = options
    self.selected = selected
    self.blocks = blocks
    self.blockCells = blockCells
    self.batchCodes = batchCodes?.map(Int64.init)
    self.labelCodes = labelCodes?.map(Int64.init)
    self.check = check
    cellCount = 0
    cellCount = passCells(epoch: 0)
  }

  /// Minibatches per pass.
  public var batchCount: Int {
    options.dropLast ? cellCount / options.batchSize : (cellCount + options.batchSize - 1) / options.batchSize
  }

  /// The positions in `blocks` that pass `epoch` reads on this rank, in order.
  private func blockOrder(epoch: Int, rank: Int? = nil) -> [Int] {
    var order = Array(blocks.indices)
    var rng = SeededGenerator(seed: options.seed &+ 0x5CA1_AB1E &* UInt64(epoch + 1))
    if options.shuffle { shuffle(&order, &rng) }
    guard let shard = options.shard, shard.worldSize > 1, !order.isEmpty else { return order }
    if shard.equalize {
      let padded = (order.count + shard.worldSize - 1) / shard.worldSize * shard.worldSize
      var k = 0
      while order.count < padded {
        order.append(order[k])
        k += 1
      }
    }
    return Array(stride(from: rank ?? shard.rank, to: order.count, by: shard.worldSize).map { order[$0] })
  }

  /// The cells pass `epoch` yields on this rank.
  private func passCells(epoch: Int) -> Int {
    func cells(rank: Int?) -> Int { blockOrder(epoch: epoch, rank: rank).reduce(0) { $0 + blockCells[$1] } }
    var count = cells(rank: nil)
    if let shard = options.shard, shard.equalize, shard.worldSize > 1 {
      count = (0..<shard.worldSize).map { cells(rank: $0) }.min() ?? 0
      if count % options.batchSize == 1 { count -= 1 }
    }
    return options.dropLast ? count / options.batchSize * options.batchSize : count
  }

  /// The order in which pass `epoch` reads its blocks, grouped into buffers.
  func bufferPlan(epoch: Int) -> [[Range<Int>]] {
    let order = blockOrder(epoch: epoch).map { blocks[$0] }
    return stride(from: 0, to: order.count, by: options.bufferBlocks).map {
      Array(order[$0..<Swift.min($0 + options.bufferBlocks, order.count)])
    }
  }

  public func pass(epoch: Int) throws -> MinibatchStream {
    let producer = BufferProducer(loader: self, plan: bufferPlan(epoch: epoch), epoch: epoch)
    let feed: BufferFeed = options.readAhead ? ReadAheadFeed(producer) : DirectFeed(producer)
    var current: OrderedRows?
    var position = 0
    var remaining = passCells(epoch: epoch)
    let batchSize = options.batchSize
    return MinibatchStream(next: { [self] in
      while remaining > 0 {
        if let rows = current, position < rows.count {
          let end = Swift.min(position + batchSize, rows.count, position + remaining)
          defer {
            remaining -= end - position
            position = end
          }
          return minibatch(rows, position..<end)
        }
        guard let next = try feed.next() else { return nil }
        current = next
        position = 0
      }
      return nil
    }, finish: { feed.stop() })
  }

  private func minibatch(_ buffer: OrderedRows, _ range: Range<Int>) -> Minibatch {
    let width = source.nCols
    let x = Tensor.filled([range.count, width], Float.self) { out in
      out.initialize(repeating: 0)
      for (i, r) in range.enumerated() {
        let base = i * width
        let ref = buffer.refs[r]
        buffer.parts[Int(ref.part)].withRow(Int(ref.row)) { columns, values in
          for k in columns.indices { out[base + Int(columns[k])] += values[k] }
        }
      }
    }
    let cells = Array(buffer.cells[range])
    func codes(_ all: [Int64]?) -> Tensor? { all.map { all in Tensor(cells.map { all[$0] }, shape: [cells.count, 1]) } }
    return Minibatch(indices: cells, x: x, batchIndex: codes(batchCodes), labels: codes(labelCodes))
  }

  /// Reads one buffer: its blocks in file order, the selected rows kept, then shuffled (an
  /// order over the blocks as read: no rows are copied). Rows that do not fill a whole
  /// minibatch are carried to the next buffer, so only a pass's last minibatch can be partial.
  fileprivate func readBuffer(_ blocks: [Range<Int>], carry: OrderedRows?, rng: inout SeededGenerator) throws -> OrderedRows {
    var parts: [CSRRows] = []
    var refs: [OrderedRows.RowRef] = []
    var cells: [Int] = []
    if let carry {
      parts.append(carry.materialized())
      refs = (0..<carry.count).map { OrderedRows.RowRef(part: 0, row: Int32($0)) }
      cells = carry.cells
    }
    let carried = refs.count
    for block in blocks.sorted(by: { $0.lowerBound < $1.lowerBound }) {
      let read = try source.rows(block)
      guard read.nRows == block.count, read.nCols == source.nCols else {
        throw CellDataError("\(source.sourceDescription): rows \(block) came back as \(read.nRows) × \(read.nCols)")
      }
      try check?(block.lowerBound, read)
      let part = Int32(parts.count)
      parts.append(read)
      for row in block where selected?[row] ?? true {
        refs.append(OrderedRows.RowRef(part: part, row: Int32(row - block.lowerBound)))
        cells.append(row)
      }
    }
    if options.shuffle {
      var order = Array(carried..<refs.count)
      shuffle(&order, &rng)
      let (readRefs, readCells) = (refs, cells)
      for (i, j) in order.enumerated() {
        refs[carried + i] = readRefs[j]
        cells[carried + i] = readCells[j]
      }
    }
    return OrderedRows(parts: parts, refs: refs, cells: cells)
  }
}

/// Rows in minibatch order, as references into the blocks they were read in, with the
/// source row of each.
struct OrderedRows {
  struct RowRef {
    var part: Int32
    var row: Int32
  }

  var parts: [CSRRows]
  var refs: [RowRef]
  var cells: [Int]
  var count: Int { cells.count }

  func prefix(_ n: Int) -> OrderedRows { OrderedRows(parts: parts, refs: Array(refs[0..<n]), cells: Array(cells[0..<n])) }
  func suffix(from n: Int) -> OrderedRows { OrderedRows(parts: parts, refs: Array(refs[n...]), cells: Array(cells[n...])) }

  /// The rows copied out, in order (for the few carried to the next buffer).
  func materialized() -> CSRRows {
    var out = CSRRows(nCols: parts.first?.nCols ?? 0)
    for ref in refs {
      parts[Int(ref.part)].withRow(Int(ref.row)) { columns, values in
        out.values += values
        out.columns += columns
        out.rowStarts.append(out.values.count)
      }
    }
    return out
  }
}

extension CSRRows {
  /// Row `row`'s columns and values.
  func withRow<R>(_ row: Int, _ body: (ArraySlice<Int32>, ArraySlice<Float>) throws -> R) rethrows -> R {
    let range = rowStarts[row]..<rowStarts[row + 1]
    return try body(columns[range], values[range])
  }
}

/// Fisher–Yates with the seeded generator (stable across platforms and Swift releases).
private func shuffle<T>(_ items: inout [T], _ rng: inout SeededGenerator) {
  guard items.count > 1 else { return }
  for i in stride(from: items.count - 1, to: 0, by: -1) {
    items.swapAt(i, rng.uniformInt(below: i + 1))
  }
}

/// Produces a pass's buffers in order; each holds whole minibatches except the last.
private final class BufferProducer: @unchecked Sendable {
  let loader: StreamingLoader
  var plan: IndexingIterator<[[Range<Int>]]>
  var rng: SeededGenerator
  var carry: OrderedRows?

  init(loader: StreamingLoader, plan: [[Range<Int>]], epoch: Int) {
    self.loader = loader
    self.plan = plan.makeIterator()
    rng = SeededGenerator(seed: loader.options.seed &+ 0x0B5E_55ED &* UInt64(epoch + 1))
  }

  func next() throws -> OrderedRows? {
    while let blocks = plan.next() {
      let buffer = try loader.readBuffer(blocks, carry: carry, rng: &rng)
      carry = nil
      let whole = buffer.count / loader.options.batchSize * loader.options.batchSize
      if whole == buffer.count { return buffer }
      if whole == 0 {
        carry = buffer
        continue
      }
      carry = buffer.suffix(from: whole)
      return buffer.prefix(whole)
    }
    defer { carry = nil }
    return carry.flatMap { $0.count > 0 ? $0 : nil }
  }
}

private protocol BufferFeed: AnyObject {
  func next() throws -> OrderedRows?
  func stop()
}

/// Reads each buffer when it is asked for.
private final class DirectFeed: BufferFeed {
  let producer: BufferProducer
  init(_ producer: BufferProducer) { self.producer = producer }
  func next() throws -> OrderedRows? { try producer.next() }
  func stop() {}
}

/// Reads one buffer ahead on a background thread.
private final class ReadAheadFeed: BufferFeed, @unchecked Sendable {
  private let condition = NSCondition()
  private var ready: Result<OrderedRows?, Error>?
  private var stopped = false
  private var finished = false

  init(_ producer: BufferProducer) {
    let thread = Thread { [self] in
      while true {
        let result = Result { try producer.next() }
        condition.lock()
        while ready != nil && !stopped { condition.wait() }
        if stopped {
          condition.unlock()
          return
        }
        ready = result
        condition.broadcast()
        condition.unlock()
        if case .success(let rows) = result, rows != nil { continue }
        return
      }
    }
    thread.name = "StreamingLoader read-ahead"
    thread.start()
  }

  func next() throws -> OrderedRows? {
    condition.lock()
    defer { condition.unlock() }
    if finished { return nil }
    while ready == nil { condition.wait() }
    let result = ready!
    ready = nil
    condition.broadcast()
    switch result {
    case .success(let rows):
      if rows == nil { finished = true }
      return rows
    case .failure(let error):
      finished = true
      throw error
    }
  }

  func stop() {
    condition.lock()
    stopped = true
    condition.broadcast()
    condition.unlock()
  }
}
