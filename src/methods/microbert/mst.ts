/**
 * Maximum spanning arborescence decoding for dependency parsing: Chu-Liu/Edmonds (Chu & Liu 1965; Edmonds 1967),
 * as used by graph-based parsers (McDonald et al. 2005; Dozat & Manning 2017 decode with it at test time).
 *
 * `scores[d][h]` is the score of word h heading word d, over nodes 0..n with 0 the artificial root
 * (row 0 is ignored). The result maximises the sum of scores over trees. `mstSingleRoot` adds the UD
 * constraint that exactly one word hangs from the root: if the unconstrained tree has several root
 * children, it solves one problem per candidate root child and keeps the best (Gabow & Tarjan give a faster
 * way; sentences here are short).
 */

/** Sum of `scores[d][heads[d]]` over words d = 1..n. */
export function treeScore(scores: ArrayLike<number>[], heads: number[]): number {
  let s = 0;
  for (let d = 1; d < heads.length; d++) s += scores[d][heads[d]];
  return s;
}

/**
 * Chu-Liu/Edmonds on a dense graph: `w[h][d]` = weight of edge h → d (−Infinity = no edge), root 0.
 * Returns `head[d]` for every node (head[0] = −1). Recursive contraction, O(n³).
 */
function chuLiuEdmonds(w: number[][]): number[] {
  const n = w.length;
  const head = new Array<number>(n).fill(-1);
  for (let d = 1; d < n; d++) {
    let best = -1;
    let bestW = -Infinity;
    for (let h = 0; h < n; h++) {
      if (h !== d && w[h][d] > bestW) {
        bestW = w[h][d];
        best = h;
      }
    }
    if (best < 0) throw new Error(`node ${d} has no incoming edge`);
    head[d] = best;
  }
  // Find a cycle among the chosen edges.
  const color = new Array<number>(n).fill(0); // 0 unvisited, 1 on current path, 2 done
  let cycle: number[] | null = null;
  for (let s = 1; s < n && !cycle; s++) {
    if (color[s]) continue;
    const path: number[] = [];
    let v = s;
    while (v > 0 && color[v] === 0) {
      color[v] = 1;
      path.push(v);
      v = head[v];
    }
    if (v > 0 && color[v] === 1) cycle = path.slice(path.indexOf(v));
    for (const p of path) color[p] = 2;
  }
  if (!cycle) return head;
  // Contract the cycle into one node c; map the other nodes to 0..m-1, c = m.
  const inCycle = new Array<boolean>(n).fill(false);
  for (const v of cycle) inCycle[v] = true;
  const keep: number[] = [];
  for (let v = 0; v < n; v++) if (!inCycle[v]) keep.push(v);
  const m = keep.length;
  const c = m;
  const W: number[][] = Array.from({ length: m + 1 }, () => new Array<number>(m + 1).fill(-Infinity));
  const enterVia: number[] = new Array(m + 1).fill(-1); // for edge u → c: which cycle node it enters
  const leaveVia: number[] = new Array(m + 1).fill(-1); // for edge c → x: which cycle node it leaves
  for (let i = 0; i < m; i++) {
    const u = keep[i];
    for (let j = 0; j < m; j++) if (i !== j) W[i][j] = w[u][keep[j]];
    for (const v of cycle) {
      const s = w[u][v] - w[head[v]][v];
      if (s > W[i][c]) {
        W[i][c] = s;
        enterVia[i] = v;
      }
      if (w[v][u] > W[c][i]) {
        W[c][i] = w[v][u];
        leaveVia[i] = v;
      }
    }
  }
  const sub = chuLiuEdmonds(W);
  const out = head.slice();
  for (let j = 0; j < m; j++) {
    const x = keep[j];
    if (x === 0) continue;
    out[x] = sub[j] === c ? leaveVia[j] : keep[sub[j]];
  }
  // The cycle is kept except at the node the chosen incoming edge enters.
  const from = sub[c];
  const v = enterVia[from];
  out[v] = keep[from];
  return out;
}

/** Best tree (any number of root children). `scores[d][h]` over nodes 0..n; returns heads with heads[0] = 0. */
export function mst(scores: ArrayLike<number>[]): number[] {
  const n = scores.length;
  const w: number[][] = Array.from({ length: n }, (_, h) => Array.from({ length: n }, (_, d) => (d === 0 || d === h ? -Infinity : scores[d][h])));
  const heads = chuLiuEdmonds(w);
  heads[0] = 0;
  return heads;
}

/** Best tree with exactly one word attached to the root (UD's constraint). Returns heads (heads[0] = 0). */
export function mstSingleRoot(scores: ArrayLike<number>[]): number[] {
  const n = scores.length;
  if (n <= 1) return [0];
  const free = mst(scores);
  const rootKids = free.filter((h, d) => d > 0 && h === 0).length;
  if (rootKids === 1) return free;
  let best: number[] = free;
  let bestS = -Infinity;
  for (let r = 1; r < n; r++) {
    const w: number[][] = Array.from({ length: n }, (_, h) =>
      Array.from({ length: n }, (_, d) => (d === 0 || d === h || (h === 0 && d !== r) ? -Infinity : scores[d][h])),
    );
    const heads = chuLiuEdmonds(w);
    heads[0] = 0;
    const s = treeScore(scores, heads);
    if (s > bestS) {
      bestS = s;
      best = heads;
    }
  }
  return best;
}
