import * as tf from '@tensorflow/tfjs';

/**
 * Minimal safetensors (Hugging Face format, https://github.com/huggingface/safetensors): u64 little-endian
 * header length N, N bytes of UTF-8 JSON {__metadata__: {string: string}, name: {dtype, shape, data_offsets}}
 * padded with spaces so 8 + N is a multiple of 8, then the raw little-endian tensor bytes.
 * Only F32 and I32 are needed here.
 */
export function encodeSafetensors(tensors: Record<string, tf.Tensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const dtype = t.dtype === 'int32' ? 'I32' : 'F32';
    const values = t.dtype === 'int32' ? new Int32Array(t.dataSync() as Int32Array) : new Float32Array(t.dataSync() as Float32Array);
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  // The header is padded with spaces to a multiple of 8 *bytes* of UTF-8 (tensor names may be non-ASCII), so
  // the data that follows is 8-byte aligned, as the format requires.
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const hbytes = new Uint8Array(Math.ceil((8 + raw.length) / 8) * 8 - 8).fill(0x20);
  hbytes.set(raw);
  const out = new Uint8Array(8 + hbytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  let p = 8 + hbytes.length;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

export interface DecodedSafetensors {
  tensors: Record<string, tf.Tensor>;
  metadata: Record<string, string>;
}

/** Decodes safetensors bytes into tensors (the caller owns and must dispose them). `file` names errors. */
export function decodeSafetensors(buf: Uint8Array, file = 'safetensors'): DecodedSafetensors {
  if (buf.length < 8) throw new Error(`${file}: truncated safetensors file`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = Number(view.getBigUint64(0, true));
  if (8 + hlen > buf.length) throw new Error(`${file}: truncated safetensors header`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + hlen)));
  } catch {
    throw new Error(`${file}: corrupt safetensors header`);
  }
  const base = 8 + hlen;
  const tensors: Record<string, tf.Tensor> = {};
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  for (const [name, spec] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const s = spec as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const [a, b] = s.data_offsets;
    if (base + b > buf.length) throw new Error(`${file}: truncated data for tensor ${name}`);
    // Copy (Buffer.slice is a view into a shared pool; the typed-array constructors need an exact buffer).
    const bytes = new Uint8Array(buf.subarray(base + a, base + b));
    if (s.dtype === 'F32') tensors[name] = tf.tensor(new Float32Array(bytes.buffer), s.shape, 'float32');
    else if (s.dtype === 'I32') tensors[name] = tf.tensor(new Int32Array(bytes.buffer), s.shape, 'int32');
    else throw new Error(`${file}: unsupported dtype ${s.dtype} for ${name}`);
  }
  return { tensors, metadata };
}
