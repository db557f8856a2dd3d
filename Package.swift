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
    .target(name: "Torch", dependencies: ["CTorch"]),
    .target(name: "SingleCell", dependencies: ["Torch"]),
    .executableTarget(
      name: "SingleCellCLI",
      dependencies: ["SingleCell", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),
    .testTarget(name: "TorchTests", dependencies: ["Torch"]),
  ],
  cxxLanguageStandard: .cxx17
)
