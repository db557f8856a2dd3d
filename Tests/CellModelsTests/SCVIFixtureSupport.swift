import Foundation
import XCTest

@testable import CellModels
import Torch

/// A file of the repository, by its path from the root.
func repositoryFile(_ path: String) -> URL {
  URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent(path)
}

/// The repository's tests/fixtures/<folder>/<file>.
func fixtureURL(_ folder: String, _ file: String) -> URL { repositoryFile("tests/fixtures/\(folder)/\(file)") }

/// One case of tests/fixtures/scvi (make_fixtures.py): scvi-tools' state dict and the
/// module's inputs and eval-mode outputs.
struct SCVICase {
  let state: StateDict
  let io: StateDict

  init(_ name: String) throws {
    state = try Safetensors.read(fixtureURL("scvi", "\(name).state.safetensors")).tensors
    io = try Safetensors.read(fixtureURL("scvi", "\(name).io.safetensors")).tensors
  }

  subscript(_ key: String) -> Tensor {
    guard let t = io[key] else { fatalError("fixture key \(key) missing") }
    return t
  }

  var input: VAEInput { VAEInput(x: self["in.x"], batchIndex: self["in.batch"], labels: self["in.labels"]) }

  /// The prior buffers as stored by scvi-tools, to construct a latent-library VAE.
  var libraryPrior: (means: [Float]?, vars: [Float]?) {
    (state["library_log_means"]?.toArray(Float.self), state["library_log_vars"]?.toArray(Float.self))
  }

  /// A VAE with `config`, loaded strictly from the case's state dict, in eval mode.
  func loadedVAE(_ config: VAEConfig) throws -> VAE {
    let prior = libraryPrior
    let vae = try VAE(config: config, libraryLogMeans: prior.means, libraryLogVars: prior.vars)
    try vae.loadStateDict(state, strict: true)
    vae.eval()
    return vae
  }
}

/// Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise, reporting the worst element.
func assertClose(_ actual: Tensor, _ expected: Tensor, rtol: Double = 1e-4, atol: Double = 1e-6,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
  XCTAssertEqual(actual.shape, expected.shape, "shape \(message)", file: file, line: line)
  guard actual.shape == expected.shape else { return }
  let a = actual.detach().to(.float64).toArray(Double.self)
  let e = expected.detach().to(.float64).toArray(Double.self)
  var worst = 0.0, worstIndex = -1
  for i in a.indices {
    let excess = Swift.abs(a[i] - e[i]) - (atol + rtol * Swift.abs(e[i]))
    if !(excess <= 0) && (worstIndex < 0 || excess > worst || excess.isNaN) { worst = excess; worstIndex = i }
  }
  if worstIndex >= 0 {
    XCTFail("\(message): element \(worstIndex) is \(a[worstIndex]), expected \(e[worstIndex]) (rtol \(rtol), atol \(atol))",
            file: file, line: line)
  }
}
