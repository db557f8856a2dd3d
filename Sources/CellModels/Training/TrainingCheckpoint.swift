import Foundation
import Torch

/// What a training run needs to continue after it stopped: the network and optimizer state
/// after `epochs` completed epochs, the optimizer step count and the history so far. Stored as
/// safetensors (`model.<key>`, `optimizer.<key>`, `extra.<key>`, `random.<key>`; the rest in the
/// metadata), written atomically.
public struct TrainingCheckpoint {
  public var epochs: Int
  public var step: Int
  public var history: TrainingHistory
  public var model: StateDict
  public var optimizer: StateDict
  /// Settings the run must keep to be continued (model kind, seed, …).
  public var info: [String: String]
  /// Other tensors the run keeps (e.g. the best epoch's weights).
  public var extra: StateDict
  /// The random streams when the checkpoint was taken (`Runtime.randomState()`), for a run
  /// that continues exactly; empty when the run reseeds on its own.
  public var random: StateDict

  public init(epochs: Int, step: Int, history: TrainingHistory, model: StateDict, optimizer: StateDict,
              info: [String: String] = [:], extra: StateDict = StateDict(), random: StateDict = StateDict()) {
    self.epochs = epochs
    self.step = step
    self.history = history
    self.model = model
    self.optimizer = optimizer
    self.info = info
    self.extra = extra
    self.random = random
  }

  public func write(to url: URL) throws {
    var tensors = StateDict()
    for (key, value) in model { tensors["model.\(key)"] = value }
    for (key, value) in optimizer { tensors["optimizer.\(key)"] = value }
    for (key, value) in extra { tensors["extra.\(key)"] = value }
    for (key, value) in random { tensors["random.\(key)"] = value }
    var metadata = ["format": "swift-singlecell training checkpoint 1", "epochs": String(epochs), "step": String(step),
                    "history": String(decoding: try JSONEncoder().encode(history), as: UTF8.self)]
    for (key, value) in info { metadata["info.\(key)"] = value }
    try Safetensors.write(tensors, metadata: metadata, to: url)
  }

  public static func read(_ url: URL) throws -> TrainingCheckpoint {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw TrainingError.invalidOptions("cannot read the checkpoint \(url.path): \(error.localizedDescription)")
    }
    return try decode(data, name: url.path)
  }

  /// The checkpoint at `url` as read by rank 0 of `group` and sent to every rank (collective), so
  /// the other ranks need not see the same file system; without a group, this process reads it.
  public static func read(_ url: URL, group: ProcessGroup?) throws -> TrainingCheckpoint {
    guard let group, group.worldSize > 1 else { return try read(url) }
    let local = group.rank == 0 ? (try? Data(contentsOf: url)).map { [UInt8]($0) } ?? [] : []
    let bytes = try group.broadcast(bytes: local, from: 0)
    guard !bytes.isEmpty else { throw TrainingError.invalidOptions("rank 0 cannot read the checkpoint \(url.path)") }
    return try decode(Data(bytes), name: url.path)
  }

  public static func decode(_ data: Data, name: String = "checkpoint") throws -> TrainingCheckpoint {
    let (tensors, metadata) = try Safetensors.decode(data, name: name)
    guard metadata["format"] == "swift-singlecell training checkpoint 1",
      let epochs = metadata["epochs"].flatMap(Int.init), let step = metadata["step"].flatMap(Int.init),
      let historyJSON = metadata["history"]
    else { throw TrainingError.invalidOptions("\(name) is not a training checkpoint of swift-singlecell") }
    let history: TrainingHistory
    do { history = try JSONDecoder().decode(TrainingHistory.self, from: Data(historyJSON.utf8)) } catch {
      throw TrainingError.invalidOptions("\(name): unreadable history in the checkpoint")
    }
    guard history.epochs.count == epochs else {
      throw TrainingError.invalidOptions("\(name): the history has \(history.epochs.count) epochs, the checkpoint says \(epochs)")
    }
    var info: [String: String] = [:]
    for (key, value) in metadata where key.hasPrefix("info.") { info[String(key.dropFirst(5))] = value }
    let random = tensors.scoped("random")
    if random.count > 0 {  // checked now, so that a bad state is an error about this file
      let current = Runtime.randomState()
      do { try Runtime.setRandomState(random) } catch {
        throw TrainingError.invalidOptions("\(name): unusable random state in the checkpoint: \(error)")
      }
      try Runtime.setRandomState(current)
    }
    return TrainingCheckpoint(epochs: epochs, step: step, history: history, model: tensors.scoped("model"),
                              optimizer: tensors.scoped("optimizer"), info: info, extra: tensors.scoped("extra"), random: random)
  }
}

extension TrainingCheckpoint {
  /// Refuses a checkpoint of another model, or of another seed (the split and each epoch's
  /// draws depend on it).
  public func checkResumable(model kind: String, seed: UInt64) throws {
    if let model = info["model"], model != kind {
      throw TrainingError.invalidOptions("the checkpoint is of a \(model) model, not \(kind)")
    }
    if let saved = info["seed"], saved != String(seed) {
      throw TrainingError.invalidOptions("the checkpoint was trained with seed \(saved) (the train/validation split depends on it); resume with the same seed")
    }
  }

  /// Puts a run back where this checkpoint left it: weights, optimizer state, and the random
  /// streams the uninterrupted run would have drawn from (a checkpoint without them reseeds
  /// from `seed` and the epoch count: fresh draws).
  public func restore(_ module: Module, optimizer: Adam, seed: UInt64) throws {
    try module.loadStateDict(model)
    try optimizer.loadStateDict(self.optimizer)
    if random.count > 0 {
      try Runtime.setRandomState(random)
    } else {
      Runtime.seed(seed &+ UInt64(epochs))
    }
  }

  /// A `Trainer.Options.onEpochEnd` that writes `make(epoch, history)` to `url` after every
  /// `every`-th epoch and after the last one.
  public static func periodicWriter(to url: URL, every: Int, maxEpochs: Int,
                                    _ make: @escaping (_ epoch: Int, _ history: TrainingHistory) throws -> TrainingCheckpoint)
    throws -> (Int, TrainingHistory) throws -> Void
  {
    guard every > 0 else { throw TrainingError.invalidOptions("the checkpoint interval must be positive, got \(every)") }
    return { epoch, history in
      guard (epoch + 1) % every == 0 || epoch + 1 == maxEpochs else { return }
      try make(epoch, history).write(to: url)
    }
  }
}
