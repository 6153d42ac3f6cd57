import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';

/**
 * Maps a URL path (still percent-encoded, e.g. `charts/a%20b.svg`) to a regular file or directory inside `root`,
 * or returns null when it must be refused: an undecodable escape, a NUL byte, a backslash, a `..` segment in any
 * encoding, an absolute path, or anything whose real path (symlinks resolved) is not inside `root`.
 *
 * Why each step: `new URL()` removes `/../` and `/%2e%2e/` but not `..%2f`, so segments are checked after decoding;
 * a symlink inside `root` may point anywhere, so containment is checked on the real path; `root + sep` is compared,
 * not `root`, because '/srv/runs-x'.startsWith('/srv/runs') is true.
 */
export function resolveInside(realRoot: string, encodedPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encodedPath);
  } catch {
    return null;
  }
  return resolveDecodedInside(realRoot, decoded);
}

/** {@link resolveInside} for a path already decoded (e.g. a query parameter). */
export function resolveDecodedInside(realRoot: string, decoded: string): string | null {
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.some((s) => s === '..')) return null;
  const candidate = resolve(realRoot, ...segments);
  if (!isInside(realRoot, candidate)) return null;
  let real: string;
  try {
    real = realpathSync(candidate);
  } catch {
    return null;
  }
  return isInside(realRoot, real) ? real : null;
}

/** True when `p` is `root` itself or below it (both absolute, normalised). */
export function isInside(root: string, p: string): boolean {
  if (p === root) return true;
  const rel = relative(root, p);
  return rel !== '' && !rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel) && p.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** A regular file inside `root` (see {@link resolveInside}), or null. */
export function fileInside(realRoot: string, encodedPath: string): string | null {
  const p = resolveInside(realRoot, encodedPath);
  if (!p) return null;
  try {
    return statSync(p).isFile() ? p : null;
  } catch {
    return null;
  }
}
