// Dinucleotide-preserving shuffle (Altschul & Erickson 1985; Kandel et al. 1996), as fasta_ushuffle -k 2.

/// Shuffles sequences while keeping every dinucleotide (adjacent pair) count exactly.
///
/// The sequence is a walk through a multigraph whose vertices are letters and whose edges are its
/// n − 1 adjacent pairs; every walk that uses each edge once (an Eulerian path from the first to
/// the last letter) is a sequence with the same dinucleotide counts. A uniformly random such path:
/// 1. choose, for every letter other than the last letter, the edge by which the path leaves it
///    for the last time, so that these "last exits" form a tree directed to the last letter
///    (a uniformly random arborescence, drawn with Wilson's loop-erased random walk, each edge
///    weighted by its multiplicity);
/// 2. shuffle each letter's other exits uniformly (Fisher–Yates) and put the last exit at the end;
/// 3. walk from the first letter, taking each letter's exits in that order.
/// The first and last letters, the letter counts and the dinucleotide counts are all kept.
/// Letters are compared as bytes (case-sensitive; N is a letter like any other).
public enum DinucleotideShuffle {
  public static func shuffle(_ sequence: [UInt8], using generator: inout SeededGenerator) -> [UInt8] {
    let n = sequence.count
    guard n > 2 else { return sequence }

    // Vertices: the distinct bytes, numbered in order of first appearance.
    var vertexOf = [Int](repeating: -1, count: 256)
    var letters: [UInt8] = []
    for byte in sequence where vertexOf[Int(byte)] < 0 {
      vertexOf[Int(byte)] = letters.count
      letters.append(byte)
    }
    let vertexCount = letters.count
    var exits = [[Int]](repeating: [], count: vertexCount)
    for i in 0..<(n - 1) {
      exits[vertexOf[Int(sequence[i])]].append(vertexOf[Int(sequence[i + 1])])
    }
    let first = vertexOf[Int(sequence[0])]
    let last = vertexOf[Int(sequence[n - 1])]

    // 1. Last-exit arborescence directed to `last` (Wilson's algorithm).
    var inTree = [Bool](repeating: false, count: vertexCount)
    inTree[last] = true
    var lastExitIndex = [Int](repeating: -1, count: vertexCount)
    for start in 0..<vertexCount where !exits[start].isEmpty && !inTree[start] {
      var v = start
      while !inTree[v] {
        lastExitIndex[v] = generator.uniformInt(below: exits[v].count)
        v = exits[v][lastExitIndex[v]]
      }
      v = start
      while !inTree[v] {
        inTree[v] = true
        v = exits[v][lastExitIndex[v]]
      }
    }

    // 2. Shuffle the other exits; the last exit goes at the end.
    for v in 0..<vertexCount where !exits[v].isEmpty {
      if v == last {
        generator.shuffle(&exits[v])
      } else {
        let lastExit = exits[v].remove(at: lastExitIndex[v])
        generator.shuffle(&exits[v])
        exits[v].append(lastExit)
      }
    }

    // 3. Walk.
    var result = [UInt8]()
    result.reserveCapacity(n)
    var next = [Int](repeating: 0, count: vertexCount)
    var v = first
    result.append(letters[v])
    for _ in 0..<(n - 1) {
      let w = exits[v][next[v]]
      next[v] += 1
      result.append(letters[w])
      v = w
    }
    return result
  }

  public static func shuffle(_ sequence: String, using generator: inout SeededGenerator) -> String {
    String(decoding: shuffle(Array(sequence.utf8), using: &generator), as: UTF8.self)
  }

  /// Counts of each ordered pair of adjacent bytes, keyed `first << 8 | second`.
  public static func dinucleotideCounts(_ sequence: [UInt8]) -> [Int: Int] {
    var counts: [Int: Int] = [:]
    if sequence.count < 2 { return counts }
    for i in 0..<(sequence.count - 1) {
      counts[Int(sequence[i]) << 8 | Int(sequence[i + 1]), default: 0] += 1
    }
    return counts
  }
}
