import CTorch
import Foundation

/// Files written by Python's `torch.save`.
public enum TorchFile {
  /// Reads the tensors of a zip-format `torch.save` file (a state dict, or nested dicts of
  /// tensors, flattened with "." keys; non-tensor values are skipped).
  public static func loadStateDict(_ url: URL) throws -> StateDict {
    guard FileManager.default.fileExists(atPath: url.path) else {
      throw TorchError.io("no such file: \(url.path)")
    }
    guard let list = ct_load_torch_file(url.path) else {
      throw TorchError.libtorch("cannot load \(url.lastPathComponent): \(String(cString: ct_last_error()))")
    }
    defer { ct_named_free(list) }
    var dict = StateDict()
    for i in 0..<ct_named_count(list) {
      dict[String(cString: ct_named_key(list, i))] = Tensor(handle: ct_named_tensor(list, i))
    }
    return dict
  }
}
