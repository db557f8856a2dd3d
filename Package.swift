// swift-tools-version:6.0
import Foundation
import PackageDescription

// libtorch comes from the PyPI wheel torch==2.11.0, linked into .deps/ by scripts/bootstrap.
let packageDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
let torchDir = "\(packageDir)/.deps/torch"

let torchCxxFlags: [String] = [
  "-isystem", "\(torchDir)/include",
  "-isystem", "\(torchDir)/include/torch/csrc/api/include",
  "-D_GLIBCXX_USE_CXX11_ABI=1",
  "-Wno-deprecated-declarations",
]
// Only libtorch_cpu and libc10 are linked; CUDA is dlopen'ed at run time when asked for.
let torchLinkerFlags: [String] = [
  "-L\(torchDir)/lib",
  "-Xlinker", "-rpath", "-Xlinker", "\(torchDir)/lib",
]

let package = Package(
  name: "swift-singlecell",
  platforms: [.macOS(.v14)],
  products: [
    .library(name: "SingleCell", targets: ["SingleCell"]),
    .executable(name: "singlecell", targets: ["SingleCellCLI"]),
    // Reads one kind of outside file per run: the mutation tests' child process, and the libFuzzer
    // harness that `make fuzz` builds (see docs/robustness.md).
    .executable(name: "singlecell-fuzz", targets: ["SingleCellFuzz"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
  ],
  targets: [
    .target(
      name: "CTorch",
      cxxSettings: [.unsafeFlags(torchCxxFlags)],
      linkerSettings: [
        .linkedLibrary("torch_cpu"), .linkedLibrary("c10"), .linkedLibrary("dl"),
        .unsafeFlags(torchLinkerFlags),
      ]
    ),
    .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
    .systemLibrary(name: "CIgraph", path: "Sources/CIgraph", pkgConfig: "igraph", providers: [.apt(["libigraph-dev"])]),
    .systemLibrary(name: "CCairo", path: "Sources/CCairo", pkgConfig: "cairo", providers: [.apt(["libcairo2-dev"])]),
    // Plain C loops for Torch (no libtorch): optimised in debug builds too, so tests stay fast.
    .target(name: "CKernels", cSettings: [.unsafeFlags(["-O2", "-fno-math-errno"])]),
    .target(name: "Torch", dependencies: ["CTorch", "CKernels"]),
    // Fault-guarded calls into libhdf5 for reading corrupt files (see its header).
    .target(name: "CHDF5Safe", dependencies: ["CHDF5"]),
    // HDF5's gzip filter through libdeflate, loaded at run time where present (see deflate.c).
    .target(name: "CHDF5Deflate", dependencies: ["CHDF5"], linkerSettings: [.linkedLibrary("dl")]),
    .target(name: "CellData", dependencies: ["CHDF5", "CHDF5Safe", "CHDF5Deflate"]),
    .target(name: "Genomics"),
    .target(name: "CellAnalysis", dependencies: ["Torch", "CellData", "CIgraph", "CCairo"]),
    .target(name: "CellModels", dependencies: ["Torch", "CellData", "Genomics", "CellAnalysis"]),
    .target(name: "SingleCell", dependencies: ["Torch", "CellData", "Genomics", "CellAnalysis", "CellModels"]),
    .executableTarget(
      name: "SingleCellCLI",
      dependencies: ["SingleCell", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),
    .executableTarget(name: "SingleCellFuzz", dependencies: ["CellData", "Genomics", "Torch", "CellModels"]),
    .testTarget(name: "TorchTests", dependencies: ["Torch"]),
    .testTarget(name: "GenomicsTests", dependencies: ["Genomics"]),
    .testTarget(name: "CellModelsTests", dependencies: ["CellModels", "CellData", "Torch"]),
    .testTarget(name: "CellAnalysisTests", dependencies: ["CellAnalysis", "CellData", "Torch"]),
    .testTarget(name: "CellDataTests", dependencies: ["CellData", "CellAnalysis"]),
    // Runs the `singlecell` executable that `swift build --build-tests` builds next to the tests.
    .testTarget(name: "CLITests", dependencies: ["CellData"]),
  ],
  cxxLanguageStandard: .cxx17
)
