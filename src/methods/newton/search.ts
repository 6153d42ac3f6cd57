/**
 * Context-driven search of the Newton print recognizer (Yaeger, Lyon & Webb, NIPS 9, 1996; Yaeger, Webb & Lyon, AI
 * Magazine 19(1), 1998): a beam search jointly over the segmentation graph (nodes = stroke boundaries) and the state
 * of a dictionary trie, with a weakly applied word-frequency language model; strings outside the dictionary stay
 * reachable at a penalty.
 */

export interface TrieNode {
  children: Map<string, TrieNode>;
  /** Total count of the words that pass through this node. */
  count: number;
  /** Count of the word ending here (0 if none). */
  end: number;
}

/** A word list with counts, as a trie (words are stored as given; see `caseFold` in the search). */
export class Dictionary {
  readonly root: TrieNode = { children: new Map(), count: 0, end: 0 };
  size = 0;

  constructor(entries: Iterable<[string, number]>) {
    for (const [w, c] of entries) this.add(w, c);
  }

  add(word: string, count: number): void {
    if (!word || !(count > 0)) throw new Error(`Dictionary: bad entry ${JSON.stringify([word, count])} (need a word and a count > 0)`);
    let n = this.root;
    n.count += count;
    for (const ch of word) {
      let c = n.children.get(ch);
      if (!c) {
        c = { children: new Map(), count: 0, end: 0 };
        n.children.set(ch, c);
      }
      c.count += count;
      n = c;
    }
    if (n.end === 0) this.size++;
    n.end += count;
  }

  /** The node reached by `prefix`, or undefined. */
  find(prefix: string): TrieNode | undefined {
    let n: TrieNode | undefined = this.root;
    for (const ch of prefix) {
      n = n.children.get(ch);
      if (!n) return undefined;
    }
    return n;
  }

  has(word: string): boolean {
    return (this.find(word)?.end ?? 0) > 0;
  }
}

/** Classifier scores of one segment (edge from → to of the graph): candidate characters with log probabilities. */
export interface ScoredSegment {
  from: number;
  to: number;
  candidates: { char: string; logp: number }[];
}

export interface SearchOptions {
  beamWidth: number;
  /** Weight of the language model's log P(word) (small = weakly applied). */
  lmWeight: number;
  /** Penalty (in log units) for taking the out-of-dictionary path at all. */
  oodPenalty: number;
  /** Extra penalty per character on the out-of-dictionary path. */
  oodCharPenalty: number;
  /** Penalty per segment (balances paths with different numbers of segments). */
  segmentPenalty: number;
  /** Let an upper-case first letter match the dictionary's lower-case word. */
  capitalFirst: boolean;
  topN: number;
}

export const DEFAULT_SEARCH: SearchOptions = { beamWidth: 10, lmWeight: 0.3, oodPenalty: 6, oodCharPenalty: 0.5, segmentPenalty: 0, capitalFirst: true, topN: 5 };

export interface Hypothesis {
  text: string;
  score: number;
  inDictionary: boolean;
  segments: [number, number][];
}

interface State {
  mode: 'dict' | 'ood' | 'free';
  trie: TrieNode | null;
  text: string;
  score: number;
  segs: [number, number][];
}

/**
 * Beam search over a segmentation graph with nodes 0…nNodes (0 = before the first stroke, nNodes = after the last).
 * With a dictionary, each path is either a dictionary path (its characters follow the trie; the LM adds
 * lmWeight·log(count(child)/count(node)) per character and lmWeight·log(end/count) at the end, i.e.
 * lmWeight·log P(word) in total) or the out-of-dictionary path (−oodPenalty once, −oodCharPenalty per character).
 * Without a dictionary every string is allowed unpenalised. Scores add the segments' log p and −segmentPenalty each.
 * Returns up to topN distinct strings that use the whole graph, best first.
 */
export function beamSearch(nNodes: number, segments: ScoredSegment[], dictionary: Dictionary | null, opts: Partial<SearchOptions> = {}): Hypothesis[] {
  const o = { ...DEFAULT_SEARCH, ...opts };
  const from: ScoredSegment[][] = Array.from({ length: nNodes + 1 }, () => []);
  for (const s of segments) {
    if (!(s.from >= 0 && s.to > s.from && s.to <= nNodes)) throw new Error(`beamSearch: segment ${s.from}→${s.to} outside 0…${nNodes}`);
    from[s.from].push(s);
  }
  const buckets: State[][] = Array.from({ length: nNodes + 1 }, () => []);
  if (dictionary) {
    buckets[0].push({ mode: 'dict', trie: dictionary.root, text: '', score: 0, segs: [] });
    buckets[0].push({ mode: 'ood', trie: null, text: '', score: -o.oodPenalty, segs: [] });
  } else {
    buckets[0].push({ mode: 'free', trie: null, text: '', score: 0, segs: [] });
  }
  const lm = (num: number, den: number) => o.lmWeight * Math.log(num / den);
  for (let i = 0; i < nNodes; i++) {
    for (const st of prune(buckets[i], o.beamWidth)) {
      for (const seg of from[i]) {
        for (const { char, logp } of seg.candidates) {
          const base = st.score + logp - o.segmentPenalty;
          const segs: [number, number][] = [...st.segs, [seg.from, seg.to]];
          if (st.mode === 'dict') {
            const key = o.capitalFirst && st.text === '' ? char.toLowerCase() : char;
            const child = st.trie!.children.get(key);
            if (!child) continue;
            buckets[seg.to].push({ mode: 'dict', trie: child, text: st.text + char, score: base + lm(child.count, st.trie!.count), segs });
          } else {
            buckets[seg.to].push({ mode: st.mode, trie: null, text: st.text + char, score: base - (st.mode === 'ood' ? o.oodCharPenalty : 0), segs });
          }
        }
      }
    }
  }
  const finals: Hypothesis[] = [];
  for (const st of buckets[nNodes]) {
    if (st.mode === 'dict') {
      if (!st.trie || st.trie.end === 0) continue;
      finals.push({ text: st.text, score: st.score + lm(st.trie.end, st.trie.count), inDictionary: true, segments: st.segs });
    } else {
      finals.push({ text: st.text, score: st.score, inDictionary: false, segments: st.segs });
    }
  }
  finals.sort((a, b) => b.score - a.score);
  const seen = new Set<string>();
  const out: Hypothesis[] = [];
  for (const h of finals) {
    if (seen.has(h.text)) continue;
    seen.add(h.text);
    out.push(h);
    if (out.length >= o.topN) break;
  }
  return out;
}

/** Keeps the best state per (mode, text) and then the best `width` states. */
function prune(states: State[], width: number): State[] {
  const best = new Map<string, State>();
  for (const s of states) {
    const k = `${s.mode}\u0000${s.text}`;
    const b = best.get(k);
    if (!b || s.score > b.score) best.set(k, s);
  }
  return [...best.values()].sort((a, b) => b.score - a.score).slice(0, width);
}
