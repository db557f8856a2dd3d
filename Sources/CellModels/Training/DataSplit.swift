import Foundation

/// A train / validation / test partition of cell (or region) indices, as scvi-tools'
/// `DataSplitter`: n_train = ⌈trainSize·n⌉, n_validation = n − n_train (or ⌊validationSize·n⌋),
/// the rest test. With `shuffle`, indices are permuted first by numpy's legacy
/// `RandomState(seed).permutation`, so the same seed gives scvi-tools' exact split; the
/// validation set is taken first, then training, then test.
///
/// Like scvi-tools when `train_size` is left at its default, a training set whose last
/// minibatch would hold 1 or 2 cells (which breaks batch norm) gives those cells to validation.
public struct DataSplit: Sendable, Equatable {
  public let train: [Int]
  public let validation: [Int]
  public let test: [Int]

  public init(train: [Int], validation: [Int], test: [Int] = []) {
    self.train = train
    self.validation = validation
    self.test = test
  }

  /// - Parameters:
  ///   - trainSize: fraction in (0, 1]; nil means scvi-tools' default 0.9 (and allows moving
  ///     a tiny last batch to validation).
  ///   - validationSize: fraction in [0, 1); nil means the rest.
  ///   - batchSize: the training minibatch size, for the tiny-last-batch rule.
  public static func random(count n: Int, trainSize: Double? = nil, validationSize: Double? = nil,
                            batchSize: Int = 128, seed: UInt32 = 0, shuffle: Bool = true) throws -> DataSplit {
    guard n > 0 else { throw TrainingError.invalidOptions("cannot split an empty data set") }
    let train = trainSize ?? 0.9
    guard train > 0, train <= 1 else { throw TrainingError.invalidOptions("trainSize must be in (0, 1], got \(train)") }
    var nTrain = Int((train * Double(n)).rounded(.up))
    var nValidation: Int
    if let validationSize {
      guard validationSize >= 0, validationSize < 1 else {
        throw TrainingError.invalidOptions("validationSize must be in [0, 1), got \(validationSize)")
      }
      guard train + validationSize <= 1 else {
        throw TrainingError.invalidOptions("trainSize + validationSize must not exceed 1")
      }
      nValidation = Int((Double(n) * validationSize).rounded(.down))
    } else {
      nValidation = n - nTrain
    }
    let remainder = nTrain % batchSize
    if trainSize == nil, remainder > 0, remainder < 3 {
      nTrain -= remainder
      if nValidation > 0 { nValidation += remainder }
    }
    guard nTrain > 0 else { throw TrainingError.invalidOptions("the training set of \(n) cells would be empty") }
    var rng = NumpyRandomState(seed: seed)
    let order = shuffle ? rng.permutation(n) : Array(0..<n)
    return DataSplit(
      train: Array(order[nValidation..<(nValidation + nTrain)]),
      validation: Array(order[0..<nValidation]),
      test: Array(order[(nValidation + nTrain)...]))
  }
}
