import CellData
import Foundation
import XCTest

/// Data-parallel `singlecell scvi train` with ranks as separate processes on loopback: `--nproc`
/// runs, identical replicas, resuming, and what happens when a rank dies, hangs or was started
/// with the wrong settings (short timeouts, so every failure shows within seconds).
final class DistributedCommandTests: CLITestCase {
  lazy var small = [counts, "--n-hidden", "16", "--n-latent", "4", "--seed", "0", "--threads", "1"]

  func testTwoLocalRanksEndWithIdenticalWeightsAndResume() throws {
    let out = scratch.appendingPathComponent("ddp").path
    let run = try singlecell(["scvi", "train"] + small + ["-o", out, "--max-epochs", "2", "--nproc", "2",
                                                          "--checkpoint-every", "1", "--quiet"])
    XCTAssertEqual(run.status, 0, run.stderr)
    let metrics = try json("\(out)/metrics.json")
    XCTAssertEqual(metrics["ranks"] as? Int, 2)
    XCTAssertEqual(metrics["max_weight_difference_across_ranks"] as? Double, 0, "both ranks hold the same weights")
    for name in ["model.safetensors", "adata.h5ad", "history.csv", "checkpoint.safetensors"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/\(name)"), "missing \(name)")
    }
    XCTAssertEqual(run.stdout.components(separatedBy: "wrote ").count - 1, 1, "only rank 0 reports writing: \(run.stdout)")
    let firstHistory = try String(contentsOfFile: "\(out)/history.csv", encoding: .utf8).split(separator: "\n")

    let resumed = try singlecell(["scvi", "train"] + small + ["-o", out, "--max-epochs", "3", "--nproc", "2", "--resume", "--quiet"])
    XCTAssertEqual(resumed.status, 0, resumed.stderr)
    let history = try String(contentsOfFile: "\(out)/history.csv", encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(history.count, 4, "a header and three epochs")
    XCTAssertEqual(Array(history.prefix(3)), firstHistory, "the resumed run keeps the first two epochs")
    XCTAssertEqual(try json("\(out)/metrics.json")["max_weight_difference_across_ranks"] as? Double, 0)

    let otherSeed = try singlecell(["scvi", "train"] + small.dropLast(4) + ["--seed", "5", "--threads", "1", "-o", out,
                                                                             "--max-epochs", "4", "--resume", "--quiet"])
    XCTAssertNotEqual(otherSeed.status, 0)
    XCTAssertTrue(otherSeed.stderr.contains("trained with seed 0"), otherSeed.stderr)
  }

  /// The checkpoint keeps the random streams, so a resumed run is the uninterrupted one, bit for bit.
  func testAResumedRunIsTheUninterruptedRun() throws {
    let whole = scratch.appendingPathComponent("whole").path, parts = scratch.appendingPathComponent("parts").path
    let common = ["scvi", "train"] + small + ["--checkpoint-every", "1", "--quiet"]
    XCTAssertEqual(try singlecell(common + ["-o", whole, "--max-epochs", "3"]).status, 0)
    XCTAssertEqual(try singlecell(common + ["-o", parts, "--max-epochs", "2"]).status, 0)
    let resumed = try singlecell(common + ["-o", parts, "--max-epochs", "3", "--resume"])
    XCTAssertEqual(resumed.status, 0, resumed.stderr)
    XCTAssertEqual(try String(contentsOfFile: "\(parts)/history.csv", encoding: .utf8),
                   try String(contentsOfFile: "\(whole)/history.csv", encoding: .utf8))
    XCTAssertEqual(FileManager.default.contents(atPath: "\(parts)/model.safetensors"),
                   FileManager.default.contents(atPath: "\(whole)/model.safetensors"), "the same weights, bit for bit")
  }

  func testLDVAETrainsWithTwoRanks() throws {
    let out = scratch.appendingPathComponent("ldvae").path
    let run = try singlecell(["ldvae", "train"] + small + ["-o", out, "--max-epochs", "2", "--nproc", "2", "--batch-size", "64", "--quiet"])
    XCTAssertEqual(run.status, 0, run.stderr)
    let metrics = try json("\(out)/metrics.json")
    XCTAssertEqual(metrics["ranks"] as? Int, 2)
    XCTAssertEqual(metrics["max_weight_difference_across_ranks"] as? Double, 0)
    XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/loadings.csv"))
  }

  func testBackedTrainingWithTwoRanksReadsEachRanksShareOfTheBlocks() throws {
    let atlas = scratch.appendingPathComponent("atlas.h5ad").path
    let simulate = try singlecell(["simulate", "atlas", "--profiles", counts, "--cells", "1000", "--genes", "100",
                                   "--batches", "2", "--seed", "0", "-o", atlas])
    XCTAssertEqual(simulate.status, 0, simulate.stderr)
    let out = scratch.appendingPathComponent("backed-ddp").path
    let run = try singlecell(["scvi", "train", atlas, "--backed", "--block-rows", "50", "--buffer-blocks", "2",
                              "--batch-key", "batch", "--n-hidden", "16", "--n-latent", "4", "--seed", "0", "--threads", "1",
                              "-o", out, "--max-epochs", "2", "--nproc", "2", "--quiet"])
    XCTAssertEqual(run.status, 0, run.stderr)
    let metrics = try json("\(out)/metrics.json")
    XCTAssertEqual(metrics["ranks"] as? Int, 2)
    XCTAssertEqual(metrics["backed"] as? Bool, true)
    XCTAssertEqual(metrics["max_weight_difference_across_ranks"] as? Double, 0, "both ranks hold the same weights")
    // 900 training cells in 20 blocks of 50 rows: rank 0 trains on about half of them per epoch.
    let trained = try XCTUnwrap(metrics["cells_trained"] as? Int)
    XCTAssertTrue((2 * 400)...(2 * 450) ~= trained, "\(trained) cells in two epochs on rank 0")
    let history = try String(contentsOfFile: "\(out)/history.csv", encoding: .utf8)
    XCTAssertTrue(history.contains("elbo_validation"), history)
  }

  /// scAtlasVAE trains data-parallel through the same launcher and DDP: in memory (the label
  /// head joins in the last epoch, unused before), streamed, and resumed from a checkpoint.
  func testScAtlasVAETrainsWithTwoRanks() throws {
    var cells = try AnnData.read(h5ad: counts)
    try cells.obs.set("half", .categorical(Categorical((0..<700).map { $0 < 350 ? "first" : "second" })))
    let input = scratch.appendingPathComponent("halves.h5ad").path
    try cells.write(h5ad: input)
    let out = scratch.appendingPathComponent("atlas-ddp").path, checkpoint = scratch.appendingPathComponent("atlas.ckpt").path
    let common = ["atlas", "train", input, "-o", out, "--batch-key", "half", "--label-key", "bulk_labels", "--hidden", "16",
                  "--n-latent", "4", "--pred-last-n-epochs", "1", "--lr", "3e-3", "--seed", "0", "--threads", "1", "--quiet",
                  "--nproc", "2", "--checkpoint", checkpoint, "--checkpoint-every", "1"]
    let run = try singlecell(common + ["--max-epochs", "2"])
    XCTAssertEqual(run.status, 0, run.stderr)
    var metrics = try json("\(out)/metrics.json")
    XCTAssertEqual(metrics["ranks"] as? Int, 2)
    XCTAssertEqual(metrics["max_weight_difference_across_ranks"] as? Double, 0, "both ranks hold the same weights")
    XCTAssertNotNil(metrics["accuracy_bulk_labels"])
    XCTAssertEqual(run.stdout.components(separatedBy: "wrote ").count - 1, 1, "only rank 0 reports writing: \(run.stdout)")
    let twoEpochs = try String(contentsOfFile: "\(out)/history.csv", encoding: .utf8).split(separator: "\n")
    XCTAssertTrue(twoEpochs[0].contains("prediction_loss_validation"), String(twoEpochs[0]))

    let resumed = try singlecell(common + ["--max-epochs", "3", "--resume", checkpoint])
    XCTAssertEqual(resumed.status, 0, resumed.stderr)
    let threeEpochs = try String(contentsOfFile: "\(out)/history.csv", encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(threeEpochs.count, 4, "a header and three epochs")
    XCTAssertEqual(Array(threeEpochs.prefix(3)), twoEpochs, "the resumed run keeps the first two epochs")
    metrics = try json("\(out)/metrics.json")
    XCTAssertEqual(metrics["max_weight_difference_across_ranks"] as? Double, 0)

    let atlas = scratch.appendingPathComponent("atlas.h5ad").path
    XCTAssertEqual(try singlecell(["simulate", "atlas", "--profiles", counts, "--cells", "1000", "--genes", "100",
                                   "--batches", "2", "--seed", "0", "-o", atlas]).status, 0)
    let backed = scratch.appendingPathComponent("atlas-backed-ddp").path
    let streamed = try singlecell(["atlas", "train", atlas, "--backed", "--block-rows", "50", "--buffer-blocks", "2",
                                   "--batch-key", "batch", "--hidden", "16", "--n-latent", "4", "--seed", "0", "--threads", "1",
                                   "-o", backed, "--max-epochs", "2", "--nproc", "2", "--quiet"])
    XCTAssertEqual(streamed.status, 0, streamed.stderr)
    metrics = try json("\(backed)/metrics.json")
    XCTAssertEqual(metrics["ranks"] as? Int, 2)
    XCTAssertEqual(metrics["backed"] as? Bool, true)
    XCTAssertEqual(metrics["max_weight_difference_across_ranks"] as? Double, 0)
  }

  /// scGPT pretraining with two ranks: each takes half of an epoch's minibatches, both end with
  /// the same weights, and a run stopped at a step resumes into the uninterrupted one. Then
  /// `annotate` trains with two ranks too.
  func testScGPTTrainsWithTwoRanksAndResumes() throws {
    func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }
    // 700 cells, 630 in training: 20 minibatches of 32 per epoch, 10 per rank.
    let common = ["scgpt", "train", counts, "--n-hvg", "100", "--epochs", "2", "--batch-size", "32", "--d-model", "16",
                  "--nheads", "2", "--d-hid", "16", "--nlayers", "1", "--max-length", "32", "--lr", "1e-3", "--seed", "0",
                  "--threads", "1", "--nproc", "2"]
    let whole = try singlecell(common + ["-o", path("whole")])
    XCTAssertEqual(whole.status, 0, whole.stderr)
    let metrics = try json(path("whole") + "/metrics.json")
    XCTAssertEqual(metrics["ranks"] as? Int, 2)
    XCTAssertEqual(metrics["max_weight_difference_across_ranks"] as? Double, 0, "both ranks hold the same weights")
    XCTAssertEqual(metrics["steps"] as? Int, 20, "10 steps per epoch on each rank")
    XCTAssertEqual(whole.stdout.components(separatedBy: "wrote ").count - 1, 1, "only rank 0 reports writing: \(whole.stdout)")

    let checkpoint = path("run.ckpt")
    let part = try singlecell(common + ["-o", path("part"), "--max-steps", "13", "--checkpoint", checkpoint])
    XCTAssertEqual(part.status, 0, part.stderr)
    let resumed = try singlecell(common + ["-o", path("resumed"), "--resume", checkpoint])
    XCTAssertEqual(resumed.status, 0, resumed.stderr)
    let expected = try String(contentsOfFile: path("whole") + "/history.csv", encoding: .utf8).split(separator: "\n")
    let got = try String(contentsOfFile: path("resumed") + "/history.csv", encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(got.count, 3, "a header and two epochs")
    XCTAssertEqual(got.first, expected.first)
    for (a, b) in zip(expected.dropFirst(), got.dropFirst()) {
      for (x, y) in zip(a.split(separator: ","), b.split(separator: ",")) {
        XCTAssertEqual(Double(x)!, Double(y)!, accuracy: abs(Double(x)!) * 1e-5, "\(a) against \(b)")
      }
    }
    let resumedMetrics = try json(path("resumed") + "/metrics.json"), partMetrics = try json(path("part") + "/metrics.json")
    XCTAssertEqual(resumedMetrics["max_weight_difference_across_ranks"] as? Double, 0)
    let tokens = try [metrics, partMetrics, resumedMetrics].map { try XCTUnwrap($0["tokens"] as? Int) }
    XCTAssertEqual(tokens[1] + tokens[2], tokens[0], "the resumed run takes only the steps after the checkpoint's 13")
    let alone = try singlecell(common.dropLast(2) + ["-o", path("alone"), "--resume", checkpoint])
    XCTAssertNotEqual(alone.status, 0, "a checkpoint of two ranks does not resume in one process")
    XCTAssertTrue(alone.stderr.contains("world_size 2"), alone.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: path("alone")))

    let streamed = try singlecell(common + ["-o", path("backed"), "--backed", "--block-rows", "50", "--buffer-blocks", "2"])
    XCTAssertEqual(streamed.status, 0, streamed.stderr)
    let backed = try json(path("backed") + "/metrics.json")
    XCTAssertEqual(backed["ranks"] as? Int, 2)
    XCTAssertEqual(backed["max_weight_difference_across_ranks"] as? Double, 0)
    let steps = try XCTUnwrap(backed["steps"] as? Int)
    XCTAssertTrue((18...20).contains(steps), "each rank streams about half of the blocks: \(steps) steps in two epochs")

    let annotated = try singlecell(["scgpt", "annotate", counts, "--label-key", "bulk_labels", "-o", path("annotate"),
                                    "--n-hvg", "100", "--epochs", "1", "--d-model", "16", "--nheads", "2", "--d-hid", "16",
                                    "--nlayers", "1", "--seed", "0", "--threads", "1", "--nproc", "2"])
    XCTAssertEqual(annotated.status, 0, annotated.stderr)
    let annotation = try json(path("annotate") + "/metrics.json")
    XCTAssertEqual(annotation["ranks"] as? Int, 2)
    XCTAssertEqual(annotation["max_weight_difference_across_ranks"] as? Double, 0)
  }

  func testSCBassetTrainsWithTwoRanks() throws {
    let atac = scratch.appendingPathComponent("atac.h5ad").path, out = scratch.appendingPathComponent("scbasset").path
    let simulate = try singlecell(["scbasset", "simulate", "--genome", Self.repository.appendingPathComponent("data/atac/hg19_chr22_20-21Mb.fa").path,
                                   "--motifs", Self.repository.appendingPathComponent("data/atac/motifs.jaspar").path,
                                   "--cells", "40", "--peaks", "120", "-o", atac])
    XCTAssertEqual(simulate.status, 0, simulate.stderr)
    let run = try singlecell(["scbasset", "train", atac, "-o", out, "--max-epochs", "2", "--batch-size", "16",
                              "--no-early-stopping", "--threads", "1", "--nproc", "2"])
    XCTAssertEqual(run.status, 0, run.stderr)
    let metrics = try json("\(out)/metrics.json")
    XCTAssertEqual(metrics["ranks"] as? Int, 2)
    XCTAssertEqual(metrics["max_weight_difference_across_ranks"] as? Double, 0, "both ranks hold the same weights")
    XCTAssertEqual(metrics["epochs"] as? Int, 2)
    XCTAssertEqual(run.stdout.components(separatedBy: "wrote ").count - 1, 1, "only rank 0 reports writing: \(run.stdout)")
  }

  func testAKilledRankStopsTheOtherWithAnError() throws {
    let port = try freePort()
    let (rank0, log0) = try start(rank: 0, port: port, timeout: 5)
    let (rank1, _) = try start(rank: 1, port: port, timeout: 5)
    defer { [rank0, rank1].forEach { if $0.isRunning { kill($0.processIdentifier, SIGKILL) } } }
    try waitFor("epoch 1/", in: log0, process: rank0)
    kill(rank1.processIdentifier, SIGKILL)
    let seconds = try waitForExit(rank0, within: 20)
    let message = try String(contentsOf: log0, encoding: .utf8)
    XCTAssertNotEqual(rank0.terminationStatus, 0)
    XCTAssertTrue(message.contains("rank 0 of 2") && message.contains("a rank died"), message)
    XCTAssertLessThan(seconds, 10, "a dead peer is noticed at once (its connection closes)")
  }

  func testAHungRankStopsTheOtherAfterTheTimeout() throws {
    let port = try freePort()
    let (rank0, log0) = try start(rank: 0, port: port, timeout: 2)
    let (rank1, _) = try start(rank: 1, port: port, timeout: 2)
    defer { [rank0, rank1].forEach { if $0.isRunning { kill($0.processIdentifier, SIGKILL) } } }
    try waitFor("epoch 1/", in: log0, process: rank0)
    kill(rank1.processIdentifier, SIGSTOP)
    let seconds = try waitForExit(rank0, within: 30)
    kill(rank1.processIdentifier, SIGKILL)
    let message = try String(contentsOf: log0, encoding: .utf8)
    XCTAssertNotEqual(rank0.terminationStatus, 0)
    XCTAssertTrue(message.contains("hung for more than 2 s"), message)
    XCTAssertLessThan(seconds, 15)
  }

  func testTheLauncherStopsTheRanksWhenOneIsKilled() throws {
    let out = scratch.appendingPathComponent("launcher").path
    let log = scratch.appendingPathComponent("launcher.log")
    let launcher = try launch(["scvi", "train"] + small + ["-o", out, "--max-epochs", "1000", "--nproc", "2", "--dist-timeout", "5"], log: log)
    defer { if launcher.isRunning { kill(launcher.processIdentifier, SIGKILL) } }
    try waitFor("epoch 1/", in: log, process: launcher)
    let rank1 = try XCTUnwrap(rankProcess(1, launchedBy: launcher.processIdentifier), "rank 1's process")
    kill(rank1, SIGKILL)
    _ = try waitForExit(launcher, within: 30)
    let message = try String(contentsOf: log, encoding: .utf8)
    XCTAssertNotEqual(launcher.terminationStatus, 0)
    XCTAssertTrue(message.contains("rank 1 was killed by signal 9"), message)
    XCTAssertNil(rankProcess(0, launchedBy: launcher.processIdentifier), "rank 0 is stopped too")
  }

  func testNobodyAtTheMasterIsAClearErrorAfterTheTimeout() throws {
    let port = try freePort()
    let start = Date()
    let run = try singlecell(["scvi", "train"] + small + ["-o", scratch.appendingPathComponent("x").path, "--rank", "1",
                                                          "--world-size", "2", "--master", "127.0.0.1:\(port)", "--dist-timeout", "2"])
    XCTAssertNotEqual(run.status, 0)
    XCTAssertTrue(run.stderr.contains("cannot reach the master at 127.0.0.1:\(port) within 2 s"), run.stderr)
    XCTAssertLessThan(Date().timeIntervalSince(start), 20)
  }

  func testMismatchedWorldSizesStopBothRanks() throws {
    let port = try freePort()
    let (rank0, log0) = try start(rank: 0, port: port, timeout: 20, worldSize: 2)
    let (rank1, log1) = try start(rank: 1, port: port, timeout: 20, worldSize: 3)
    defer { [rank0, rank1].forEach { if $0.isRunning { kill($0.processIdentifier, SIGKILL) } } }
    for (process, log) in [(rank0, log0), (rank1, log1)] {
      XCTAssertLessThan(try waitForExit(process, within: 30), 15, "well before the 20 s timeout")
      XCTAssertNotEqual(process.terminationStatus, 0)
      let message = try String(contentsOf: log, encoding: .utf8)
      XCTAssertTrue(message.contains("rank 1 was started with world size 3 but rank 0 with 2"), message)
    }
  }

  /// Ranks started by --nproc share one stderr; an error message must go out in one write, or
  /// two failing ranks interleave their messages byte by byte. A SOCK_SEQPACKET socket as
  /// stderr keeps each write as one message, so the test sees the writes themselves.
  func testAnErrorMessageIsWrittenInOneWrite() throws {
    var ends: [Int32] = [0, 0]
    XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &ends), 0)
    defer { close(ends[0]) }
    let process = Process()
    process.executableURL = try Self.builtExecutable("singlecell")
    process.arguments = ["scvi", "train", scratch.appendingPathComponent("missing.h5ad").path, "-o",
                         scratch.appendingPathComponent("out").path]
    process.standardError = FileHandle(fileDescriptor: ends[1], closeOnDealloc: false)
    try process.run()
    process.waitUntilExit()
    close(ends[1])
    var messages: [String] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
      let n = read(ends[0], &buffer, buffer.count)
      if n <= 0 { break }
      messages.append(String(decoding: buffer[0..<n], as: UTF8.self))
    }
    XCTAssertNotEqual(process.terminationStatus, 0)
    XCTAssertEqual(messages.count, 1, "\(messages.count) writes: \(messages.prefix(5))")
    XCTAssertTrue(messages.first?.hasPrefix("Error: ") == true && messages.first?.contains("missing.h5ad") == true, "\(messages)")
  }

  func testBadDistributedSettings() throws {
    let out = scratch.appendingPathComponent("bad").path
    for (arguments, expected) in [
      (["--rank", "0"], "needs both --rank and --world-size"),
      (["--rank", "0", "--world-size", "2", "--master", "nohost"], "--master must be HOST:PORT"),
      (["--rank", "0", "--world-size", "2"], "needs --master HOST:PORT"),
      (["--rank", "2", "--world-size", "2", "--master", "127.0.0.1:1"], "--rank 2 is outside 0..<2"),
      (["--nproc", "0"], "--nproc must be at least 1"),
    ] {
      let run = try singlecell(["scvi", "train"] + small + ["-o", out, "--max-epochs", "1"] + arguments)
      XCTAssertNotEqual(run.status, 0, "\(arguments)")
      XCTAssertTrue(run.stderr.contains(expected), "\(arguments): \(run.stderr)")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: out), "nothing written")
  }

  // MARK: - Support

  /// One rank of a two-machine-style job (explicit --rank/--world-size/--master), training long.
  func start(rank: Int, port: Int, timeout: Int, worldSize: Int = 2) throws -> (Process, URL) {
    let log = scratch.appendingPathComponent("rank\(rank).log")
    let process = try launch(["scvi", "train"] + small + [
      "-o", scratch.appendingPathComponent("rank\(rank)").path, "--max-epochs", "1000", "--rank", String(rank),
      "--world-size", String(worldSize), "--master", "127.0.0.1:\(port)", "--dist-timeout", String(timeout),
    ], log: log)
    return (process, log)
  }

  func launch(_ arguments: [String], log: URL) throws -> Process {
    try Data().write(to: log)
    let process = Process()
    process.executableURL = try Self.builtExecutable("singlecell")
    process.arguments = arguments
    process.standardOutput = try FileHandle(forWritingTo: log)
    process.standardError = try FileHandle(forWritingTo: log)
    try process.run()
    return process
  }

  func waitFor(_ text: String, in log: URL, process: Process, within seconds: Double = 60) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      let content = try String(contentsOf: log, encoding: .utf8)
      if content.contains(text) { return }
      guard process.isRunning else { XCTFail("exited before printing '\(text)': \(content)"); throw CocoaError(.fileReadUnknown) }
      usleep(50_000)
    }
    XCTFail("no '\(text)' within \(seconds) s")
    throw CocoaError(.fileReadUnknown)
  }

  /// Seconds until `process` exits (fails the test after `seconds`).
  func waitForExit(_ process: Process, within seconds: Double) throws -> Double {
    let start = Date()
    while process.isRunning {
      if Date().timeIntervalSince(start) > seconds {
        XCTFail("still running after \(seconds) s")
        kill(process.processIdentifier, SIGKILL)
        throw CocoaError(.fileReadUnknown)
      }
      usleep(20_000)
    }
    return Date().timeIntervalSince(start)
  }

  /// The running process with RANK=rank that `--nproc` started from `launcher`.
  func rankProcess(_ rank: Int, launchedBy launcher: pid_t) -> pid_t? {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    for entry in entries {
      guard let pid = pid_t(entry), let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
      let variables = Set(environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
      guard variables.contains("SINGLECELL_LAUNCHER_PID=\(launcher)"), variables.contains("RANK=\(rank)") else { continue }
      if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), stat.contains(") Z ") { continue }
      return pid
    }
    return nil
  }
}
