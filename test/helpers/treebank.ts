import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../src/engine/rng.js';
import { tempDir } from './tmp.js';

/**
 * A small synthetic UD treebank (a made-up language with a fixed word order) with multiword tokens
 * (`au` = `a` + `le`), empty nodes (`N.1` after some verbs, used in DEPS) and punctuation, written as
 * `syn-ud-{train,dev,test}.conllu` into a fresh temp directory. Sentences:
 *   DET NOUN [ADJ] VERB DET NOUN [ADP DET NOUN] .
 * with det/amod/nsubj/root/obj/case/obl/punct relations.
 */
export function writeSyntheticTreebank(opts: { train?: number; dev?: number; test?: number; seed?: number } = {}): string {
  const rng = new Rng(opts.seed ?? 11);
  const dir = tempDir('efftrain-ud-');
  mkdirSync(dir, { recursive: true });
  const nouns = ['kat', 'dog', 'mus', 'fis', 'bord', 'haus', 'trenk', 'blum', 'stern', 'wald', 'kindo', 'muzik'];
  const verbs = ['vidas', 'manĝas', 'amas', 'portas', 'trovas', 'kantas'];
  const adjs = ['granda', 'malgranda', 'bela', 'ruĝa'];
  const dets = ['le', 'la'];
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)];
  const sentence = (k: number, split: string): string => {
    const w: { form: string; upos: string; head: number; rel: string }[] = [];
    const lines: string[] = [];
    const d1 = pick(dets);
    const hasAdj = rng.next() < 0.5;
    const hasObl = rng.next() < 0.5;
    const hasEmpty = rng.next() < 0.3;
    // indices are 1-based and fixed by the pattern
    const subjN = 2;
    const verb = hasAdj ? 4 : 3;
    w.push({ form: d1, upos: 'DET', head: subjN, rel: 'det' });
    w.push({ form: pick(nouns), upos: 'NOUN', head: verb, rel: 'nsubj' });
    if (hasAdj) w.push({ form: pick(adjs), upos: 'ADJ', head: subjN, rel: 'amod' });
    w.push({ form: pick(verbs), upos: 'VERB', head: 0, rel: 'root' });
    w.push({ form: pick(dets), upos: 'DET', head: verb + 2, rel: 'det' });
    w.push({ form: pick(nouns), upos: 'NOUN', head: verb, rel: 'obj' });
    let mwt = -1;
    if (hasObl) {
      const a = w.length + 1;
      const useContraction = rng.next() < 0.6;
      w.push({ form: 'a', upos: 'ADP', head: a + 2, rel: 'case' });
      w.push({ form: useContraction ? 'le' : pick(dets), upos: 'DET', head: a + 2, rel: 'det' });
      w.push({ form: pick(nouns), upos: 'NOUN', head: verb, rel: 'obl' });
      if (useContraction) mwt = a;
    }
    w.push({ form: '.', upos: 'PUNCT', head: verb, rel: 'punct' });
    lines.push(`# sent_id = ${split}-${k}`);
    lines.push(`# text = ${w.map((x, i) => (i === mwt ? 'au' : i === mwt + 1 && mwt >= 0 ? null : x.form)).filter((x) => x !== null).join(' ')}`);
    w.forEach((x, i) => {
      const id = i + 1;
      if (id === mwt) lines.push(`${id}-${id + 1}\tau\t_\t_\t_\t_\t_\t_\t_\t_`);
      const misc = id === w.length - 1 ? 'SpaceAfter=No' : '_';
      lines.push(`${id}\t${x.form}\t${x.form}\t${x.upos}\t_\t_\t${x.head}\t${x.rel}\t${x.head}:${x.rel}\t${misc}`);
      if (hasEmpty && id === verb) lines.push(`${id}.1\t${x.form}\t${x.form}\tVERB\t_\t_\t_\t_\t0:root\t_`);
    });
    return lines.join('\n') + '\n\n';
  };
  const write = (split: string, n: number) => {
    let s = '';
    for (let k = 0; k < n; k++) s += sentence(k, split);
    writeFileSync(join(dir, `syn-ud-${split}.conllu`), s);
  };
  write('train', opts.train ?? 120);
  write('dev', opts.dev ?? 30);
  write('test', opts.test ?? 30);
  return dir;
}
