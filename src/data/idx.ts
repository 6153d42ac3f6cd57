import { readFileSync, existsSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { UserError } from '../errors.js';

/** A parsed IDX file (LeCun's MNIST format): unsigned-byte data with its dimensions. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;

/**
 * Parses IDX bytes (raw, or gzip when the buffer starts with the gzip magic). Only the unsigned-byte
 * type (0x08) is supported, which is what MNIST-family data sets use. `file` is used in error messages.
 */
export function parseIdx(buf: Uint8Array, file: string): IdxArray {
  let bytes = buf;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new UserError(`${file}: corrupt or truncated gzip data (${(e as Error).message})`);
    }
  }
  if (bytes.length < 4) throw new UserError(`${file}: truncated IDX file (${bytes.length} bytes, no header)`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new UserError(`${file}: not an IDX file (bad magic number 0x${hex(bytes, 0, 4)})`);
  }
  const type = bytes[2];
  const ndim = bytes[3];
  if (type !== UBYTE) throw new UserError(`${file}: IDX element type 0x${type.toString(16)} not supported (expected 0x08 unsigned byte)`);
  if (ndim < 1 || ndim > 4) throw new UserError(`${file}: IDX with ${ndim} dimensions not supported`);
  const headerLen = 4 + 4 * ndim;
  if (bytes.length < headerLen) throw new UserError(`${file}: truncated IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  if (bytes.length < headerLen + count) {
    throw new UserError(
      `${file}: truncated IDX data: header promises ${dims.join('x')} = ${count} bytes but only ${bytes.length - headerLen} are present`,
    );
  }
  return { dims, data: bytes.subarray(headerLen, headerLen + count) };
}

/** Reads and parses an IDX file from disk (raw or .gz). */
export function readIdx(file: string): IdxArray {
  if (!existsSync(file)) throw new UserError(`${file}: file not found`);
  return parseIdx(readFileSync(file), file);
}

function hex(b: Uint8Array, start: number, n: number): string {
  return Array.from(b.subarray(start, start + n), (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Encodes an unsigned-byte IDX file (used by tests and by tools that write small data sets). */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = UBYTE;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
