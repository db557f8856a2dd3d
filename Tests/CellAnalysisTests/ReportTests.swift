import CellAnalysis
import CellData
import Foundation
import XCTest

final class ReportTests: XCTestCase {
  var dir: URL!

  override func setUpWithError() throws {
    dir = try PlotFixtures.temporaryDirectory()
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: dir)
  }

  func write(_ text: String, _ name: String) throws {
    try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
  }

  func writeFullRun() throws {
    try write("""
      {"model": "SCVI", "n_latent": 10, "gene_likelihood": "zinb", "use_gpu": false,
       "trainer": {"max_epochs": 400, "lr": 0.001, "early_stopping": {"patience": 45}}, "layers": [128, 128]}
      """, "model.json")
    try write(#"{"ari": 0.81234, "nmi": 0.7654321, "silhouette_label": -0.05, "n_cells": 700, "note": "a<b"}"#, "metrics.json")
    try write("epoch,train_loss,validation_loss\n0,10,11\n1,8,9.5\n2,7,9\n", "history.csv")
    try write(",Z_0,Z_1\nCD3D,1.5,-0.2\nMS4A1,-1.2,0.8\nLYZ,0.3,0.1\n", "loadings.csv")
    var adata = try PlotFixtures.pbmc()
    let leiden = (0..<adata.nObs).map { String($0 % 4) }
    try adata.obs.set("leiden", .categorical(Categorical(leiden)))
    // 700 categories: too many to colour by.
    try adata.obs.set("barcode", .categorical(Categorical(adata.obsNames)))
    try adata.write(h5ad: dir.appendingPathComponent("adata.h5ad").path)
  }

  /// The base64 payloads of the report's images.
  func imagePayloads(_ html: String) -> [Data] {
    html.components(separatedBy: "src=\"data:image/png;base64,").dropFirst().compactMap { part in
      Data(base64Encoded: String(part.prefix { $0 != "\"" }))
    }
  }

  func testFullReportIsSelfContained() throws {
    try writeFullRun()
    let report = try RunReport(directory: dir)
    let url = try report.write()
    XCTAssertEqual(url.lastPathComponent, "report.html")
    let html = try String(contentsOf: url, encoding: .utf8)
    XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
    XCTAssertEqual(report.notes, [])

    // Self-contained: every src is a data URI, no links, no scripts or external stylesheets.
    XCTAssertEqual(PlotFixtures.attributes("src", in: html).filter { !$0.hasPrefix("data:image/png;base64,") }, [])
    XCTAssertFalse(html.contains("href="))
    XCTAssertFalse(html.contains("<script"))
    XCTAssertFalse(html.contains("http://") || html.contains("https://"))

    // Images: curves, 2 bases × 2 colour keys (bulk_labels, leiden; not barcode), 2 loadings factors.
    let images = imagePayloads(html)
    XCTAssertEqual(images.count, 7)
    XCTAssertEqual(report.imageCount, 7)
    for image in images { XCTAssertNotNil(PlotFixtures.pngSize(image), "an inlined PNG") }
    let captions = PlotFixtures.attributes("alt", in: html)
    XCTAssertEqual(captions.filter { $0.hasPrefix("X_") },
                   ["X_umap · bulk_labels", "X_umap · leiden", "X_pca · bulk_labels", "X_pca · leiden"])
    XCTAssertTrue(html.contains("not coloured by barcode"))

    // Settings (nested keys flattened) and metrics values.
    for text in ["<td>model</td><td>SCVI</td>", "<td>n_latent</td><td>10</td>", "<td>use_gpu</td><td>false</td>",
                 "<td>trainer.max_epochs</td><td>400</td>", "<td>trainer.early_stopping.patience</td><td>45</td>",
                 "<td>layers</td><td>[128, 128]</td>", "<td>trainer.lr</td><td>0.001</td>",
                 "<td>ari</td><td class=\"num\">0.81234</td>", "<td>nmi</td><td class=\"num\">0.765432</td>",
                 "<td>silhouette_label</td><td class=\"num\">-0.05</td>", "<td>n_cells</td><td class=\"num\">700</td>",
                 "<td>note</td><td>a&lt;b</td>"] {
      XCTAssertTrue(html.contains(text), text)
    }
    // Settings keep the file's order.
    let model = try XCTUnwrap(html.range(of: "<td>model</td>")), lr = try XCTUnwrap(html.range(of: "<td>trainer.lr</td>"))
    XCTAssertLessThan(model.lowerBound, lr.lowerBound)
  }

  func testCustomOutputPath() throws {
    try write(#"{"elbo": 1234.5}"#, "metrics.json")
    let target = dir.appendingPathComponent("elsewhere.html")
    XCTAssertEqual(try RunReport(directory: dir).write(to: target), target)
    XCTAssertTrue(FileManager.default.fileExists(atPath: target.path))
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("report.html").path))
  }

  func testMissingPiecesAreNoted() throws {
    try write(#"{"ari": 0.5}"#, "metrics.json")
    let report = try RunReport(directory: dir)
    XCTAssertEqual(report.notes.count, 4)
    for name in ["model.json", "history.csv", "adata.h5ad", "loadings.csv"] {
      XCTAssertTrue(report.html.contains("skipped: \(name) not found"), name)
    }
    XCTAssertTrue(report.html.contains("<td>ari</td><td class=\"num\">0.5</td>"))
    XCTAssertEqual(report.imageCount, 0)
  }

  func testUnreadablePiecesGetErrorNotes() throws {
    try write("epoch,train_loss\n0,abc\n", "history.csv")
    try write("{\"ari\": 0.5,", "metrics.json")
    try write("[1, 2]", "model.json")
    let report = try RunReport(directory: dir)
    XCTAssertTrue(report.html.contains("could not read history.csv"), report.html)
    XCTAssertTrue(report.html.contains("&#39;abc&#39; is not a number"))
    XCTAssertTrue(report.html.contains("could not read metrics.json: metrics.json: invalid JSON"))
    XCTAssertTrue(report.html.contains("model.json is not a JSON object"))
    XCTAssertEqual(report.notes.filter { $0.contains("could not read") }.count, 3)
  }

  func testLongSettingsAreAbbreviated() throws {
    let genes = (0..<1000).map { "\"GENE\($0)\"" }.joined(separator: ",")
    try write("{\"setup\": {\"gene_names\": [\(genes)]}, \"note\": \"\(String(repeating: "x", count: 1000))\"}", "model.json")
    let html = try RunReport(directory: dir).html
    XCTAssertTrue(html.contains("<td>setup.gene_names</td><td>[&quot;GENE0&quot;, &quot;GENE1&quot;, &quot;GENE2&quot;, &quot;GENE3&quot;, &quot;GENE4&quot;, …] (1000 items)</td>"))
    XCTAssertFalse(html.contains("GENE999"))
    XCTAssertTrue(html.contains(String(repeating: "x", count: 299) + "…</td>"))
    XCTAssertFalse(html.contains(String(repeating: "x", count: 300)))
  }

  func testMetricsOfDifferentScalesGetSeparateCurvePlots() throws {
    var csv = "epoch,train_loss,kl_weight,validation_loss\n"
    for e in 0..<10 { csv += "\(e),\(600 - 5 * e),\(Double(e) / 10),\(e % 2 == 0 ? String(620 - 5 * e) : "")\n" }
    try write(csv, "history.csv")
    let report = try RunReport(directory: dir)
    XCTAssertEqual(report.imageCount, 2)
    XCTAssertEqual(PlotFixtures.attributes("alt", in: report.html), ["train_loss, validation_loss", "kl_weight"])
  }

  func testMissingOrEmptyDirectoryThrows() throws {
    let absent = dir.appendingPathComponent("no-such-run")
    XCTAssertThrowsError(try RunReport(directory: absent)) { error in
      XCTAssertTrue("\(error)".contains("does not exist"), "\(error)")
    }
    XCTAssertThrowsError(try RunReport(directory: dir)) { error in
      XCTAssertTrue("\(error)".contains("has none of model.json, metrics.json"), "\(error)")
    }
    try write("x", "file.txt")
    XCTAssertThrowsError(try RunReport(directory: dir.appendingPathComponent("file.txt"))) { error in
      XCTAssertTrue("\(error)".contains("is not a directory"), "\(error)")
    }
  }
}
