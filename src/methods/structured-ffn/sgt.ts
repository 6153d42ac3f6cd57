/**
 * Self-guided training schedule (official code CLAIRE-Labo/StructuredFFN: `CosineTempDecay`/`LinearTempDecay` and `BasicLinear`).
 *
 * α starts at 1 and is updated once per optimizer step: α_t = ½(1 + cos(π·t/t_g)) for t ≤ t_g, 0 after,
 * where t counts finished optimizer steps (the forward of step t uses α_t) and t_g = ρ·(total steps).
 */
export type GuideDecay = 'cosine' | 'linear';

/** α for the forward of optimizer step `step` (0-based), guidance length `tG` steps. */
export function sgtAlpha(step: number, tG: number, decay: GuideDecay = 'cosine'): number {
  if (!(tG > 0) || step >= tG) return 0;
  const t = Math.max(0, step) / tG;
  return decay === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * t)) : 1 - t;
}

/**
 * ρ of the same-FLOPs mode (official code's "fixedflop"): C_dense = (1+ρ)·C_struct + 0.5·ρ·C_guide per token,
 * i.e. ρ = (C_dense − C_struct)/(C_struct + 0.5·C_guide). C_guide is the dense cost of the replaced maps
 * (used with mean probability 0.5 under cosine decay over ρ·T steps).
 */
export function sameFlopsRho(cDense: number, cStruct: number, cGuide: number): number {
  return Math.max(0, (cDense - cStruct) / (cStruct + 0.5 * cGuide));
}
