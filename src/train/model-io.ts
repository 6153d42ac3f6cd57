import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { UserError } from '../errors.js';

/**
 * Saves a tfjs LayersModel to `dir` as model.json + weights.bin — the layout tfjs-node's `file://` handler
 * writes — without needing tfjs-node (tfjs 4.22 has no file handlers in plain Node).
 */
export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData
        ? Array.isArray(artifacts.weightData)
          ? tf.io.concatenateArrayBuffers(artifacts.weightData)
          : artifacts.weightData
        : new ArrayBuffer(0);
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: ['./weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      writeFileAtomic(join(dir, 'weights.bin'), new Uint8Array(weightData));
      writeFileAtomic(join(dir, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
    }),
  );
}

/** Loads a model saved by saveLayersModel (or by tfjs-node) from `dir` (or a path to its model.json). */
export async function loadLayersModel(dirOrJson: string): Promise<tf.LayersModel> {
  const jsonPath = dirOrJson.endsWith('.json') ? dirOrJson : join(dirOrJson, 'model.json');
  if (!existsSync(jsonPath)) throw new UserError(`${jsonPath}: model file not found`);
  let json: { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  try {
    json = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (e) {
    throw new UserError(`${jsonPath}: not valid JSON (${(e as Error).message})`);
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) throw new UserError(`${jsonPath}: not a tfjs model.json (no modelTopology/weightsManifest)`);
  const base = jsonPath.slice(0, jsonPath.lastIndexOf('/') + 1);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      const file = join(base, p);
      if (!existsSync(file)) throw new UserError(`${jsonPath}: weights file ${file} not found`);
      const b = readFileSync(file);
      buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
    }
  }
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData: tf.io.concatenateArrayBuffers(buffers) }));
}
