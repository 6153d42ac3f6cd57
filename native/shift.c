/*
 * efftrain-shift: batched kernels of the multiplication-free S3 shift-network engine
 * (src/methods/s3/shift-batched.ts drives them; src/methods/s3/shift-inference.ts is the reference).
 *
 * Paper: Li et al., "S³: Sign-Sparse-Shift Reparametrization …", NeurIPS 2021, Sec. 1/3 (weights ±2^p, so a
 * multiply-accumulate is a shift and an add); integer kernel after DeepShift (Elhoushi et al., CVPR-W 2021,
 * Sec. 3.3): y = bias + Σ_p ((Σ_{w=+2^p} x) − (Σ_{w=−2^p} x)) << (p − pMin).
 *
 * Layout: a block of LANES samples, element-major and sample-minor: value e of sample s sits at
 * [e·LANES + s] (e is the NHWC index of one sample). Every sample of a block shares the layer's offset
 * lists, so each add is one SIMD add over LANES samples; the int32 sums do not depend on a sample's
 * fixed-point scale, so the result equals the per-sample TypeScript engine bit for bit. The per-sample
 * scale choices stay in TypeScript (the very same code as the reference engine); these kernels only take
 * their results (scale factors, shift counts, quantised biases).
 *
 * The float parts (stem conv, dense head, per-channel affine, pooling) repeat the reference engine's
 * float64 operations in the same order, including its skip of zero inputs; built with
 * -ffp-contract=off so no multiply-add is fused, they round exactly like the JavaScript.
 *
 *   loadInput(images f32, n, inputSize, b0, scale, offset, out f64)  out = images[b0+s]·scale + offset (0 past n)
 *   conv2d(x f64, out f64, kernel f64, bias f64|null, geom i32[12])   geom = [inH, inW, cin, outH, outW, kh, kw,
 *                                                                      sh, sw, padTop, padLeft, cout]
 *   dense(x f64, out f64, kernel f64, bias f64|null, inFeatures, units)
 *   affine(x f64, scale f64, offset f64)                               in place, x·scale[c] + offset[c]
 *   relu(x f64|i32)                                                    in place
 *   maxPool(x, out, geom i32[9])                                       same type; geom = [inH, inW, c, outH, outW,
 *                                                                      ph, pw, sh, sw]
 *   globalAvgPool(x f64, out f64, positions, channels)
 *   toFloat(x i32, out f64, scales f64[LANES])                          out = x·scales[s]
 *   maxAbs(x f64|i32, out f64[LANES])                                  per-sample max |x|
 *   quantize(x f64, out i32, scales f64[LANES])                        out = Math.round(x·scales[s]) as int32
 *   shiftRight(x i32, r i32[LANES])                                    in place, round(x / 2^r[s]) (ties up)
 *   shiftLayer(x i32, pad i32|null, out i32, ptr i32, offs i32, bias i32, geom i32[14])
 *       geom = [inH, inW, cin, padTop, padLeft, hp, wp, outH, outW, outC, nShift, rowStep, colStep, relu];
 *       ptr/offs = the ShiftProgram of shift-inference.ts (offsets in elements of one sample)
 *   output(x f64, out f32|f64, b0, n, outSize)                         out[b0+s] = x (samples below n)
 *   abi, lanes, config()
 * Every function checks its arrays' types and lengths and throws instead of reading out of bounds.
 */
#include <node_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The contract with src/engine/shift-addon.ts (SHIFT_ABI there): bump both when a function changes. */
#define EFFTRAIN_SHIFT_ABI 1
#define LANE_BITS 4
#define LANES (1 << LANE_BITS)

/* One block of int32 lanes is one 64-byte vector; doubles go in 64-byte halves (DL lanes each). */
#define DL 8
_Static_assert(LANES == 2 * DL, "conv2d and dense keep a block in two double vectors");
typedef uint32_t vu __attribute__((vector_size(LANES * 4)));
typedef int32_t vi __attribute__((vector_size(LANES * 4)));
typedef double vd __attribute__((vector_size(DL * 8)));
typedef int64_t vl __attribute__((vector_size(DL * 8)));

static inline vu ld_u(const int32_t *p) { vu v; memcpy(&v, p, sizeof v); return v; }
static inline void st_u(int32_t *p, vu v) { memcpy(p, &v, sizeof v); }
static inline vd ld_d(const double *p) { vd v; memcpy(&v, p, sizeof v); return v; }
static inline void st_d(double *p, vd v) { memcpy(p, &v, sizeof v); }
static inline vd splat_d(double x) { return (vd){x, x, x, x, x, x, x, x}; }
/* m ? a : b for a lane mask m of all-ones / zeros (C has no vector ?:). */
static inline vd select_d(vl m, vd a, vd b) { return (vd)(((vl)a & m) | ((vl)b & ~m)); }
/* acc + x·k where x ≠ 0, else acc: the reference's `if (x === 0) continue; acc += x * k`, per sample. */
static inline vd mac_nz(vd acc, vd x, vd k) { return select_d(x != 0, acc + x * k, acc); }

/* ---------- argument helpers ---------- */

typedef struct {
  void *p;
  size_t n; /* elements */
  napi_typedarray_type t;
} arr_t;

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* Reads a typed array; with `nullable`, null/undefined gives p = NULL. Returns 0 on a wrong argument. */
static int get_arr(napi_env env, napi_value v, arr_t *a, int nullable) {
  napi_valuetype vt;
  if (napi_typeof(env, v, &vt) != napi_ok) return 0;
  if (nullable && (vt == napi_null || vt == napi_undefined)) {
    a->p = NULL;
    a->n = 0;
    a->t = napi_float64_array;
    return 1;
  }
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_value buf;
  size_t off;
  return napi_get_typedarray_info(env, v, &a->t, &a->n, &a->p, &buf, &off) == napi_ok;
}

static int get_typed(napi_env env, napi_value v, arr_t *a, napi_typedarray_type t, int nullable) {
  if (!get_arr(env, v, a, nullable)) return 0;
  return a->p == NULL || a->t == t;
}

/* Products and sums of non-negative sizes, saturating at INT64_MAX, so a length check can never pass by overflow. */
static int64_t smul(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}
static int64_t smul3(int64_t a, int64_t b, int64_t c) { return smul(smul(a, b), c); }
static int64_t smul4(int64_t a, int64_t b, int64_t c, int64_t d) { return smul(smul3(a, b, c), d); }
static int64_t sadd(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

static int get_int(napi_env env, napi_value v, int64_t *out) { return napi_get_value_int64(env, v, out) == napi_ok; }
static int get_num(napi_env env, napi_value v, double *out) { return napi_get_value_double(env, v, out) == napi_ok; }

#define ARGS(k)                                                                                     \
  size_t argc = k;                                                                                  \
  napi_value argv[k];                                                                               \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < k)                  \
    return fail(env, "efftrain-shift: " FN ": expected " #k " arguments");
#define REQUIRE(cond, what)                                                                         \
  if (!(cond)) return fail(env, "efftrain-shift: " FN ": " what);

/* A geometry array of exactly k non-negative int32 values. */
static int get_geom(napi_env env, napi_value v, int k, int64_t *g) {
  arr_t a;
  if (!get_typed(env, v, &a, napi_int32_array, 0) || (int)a.n != k) return 0;
  for (int i = 0; i < k; i++) {
    g[i] = ((int32_t *)a.p)[i];
    if (g[i] < 0) return 0;
  }
  return 1;
}

/* ---------- kernels ---------- */

#undef FN
#define FN "loadInput"
static napi_value load_input(napi_env env, napi_callback_info info) {
  ARGS(7);
  arr_t img, out;
  int64_t n, size, b0;
  double scale, offset;
  REQUIRE(get_typed(env, argv[0], &img, napi_float32_array, 0), "images must be a Float32Array");
  REQUIRE(get_int(env, argv[1], &n) && get_int(env, argv[2], &size) && get_int(env, argv[3], &b0), "n, inputSize, b0 must be integers");
  REQUIRE(get_num(env, argv[4], &scale) && get_num(env, argv[5], &offset), "scale, offset must be numbers");
  REQUIRE(get_typed(env, argv[6], &out, napi_float64_array, 0), "out must be a Float64Array");
  REQUIRE(n >= 0 && size > 0 && b0 >= 0 && (size_t)smul(n, size) <= img.n && out.n == (size_t)smul(size, LANES), "sizes do not match");
  const float *x = img.p;
  double *o = out.p;
  for (int s = 0; s < LANES; s++) {
    int64_t b = b0 + s;
    if (b < n) {
      const float *xs = x + b * size;
      for (int64_t e = 0; e < size; e++) o[e * LANES + s] = (double)xs[e] * scale + offset;
    } else {
      for (int64_t e = 0; e < size; e++) o[e * LANES + s] = 0;
    }
  }
  return NULL;
}

#undef FN
#define FN "conv2d"
static napi_value conv2d(napi_env env, napi_callback_info info) {
  ARGS(5);
  arr_t xa, oa, ka, ba;
  int64_t g[12];
  REQUIRE(get_typed(env, argv[0], &xa, napi_float64_array, 0) && get_typed(env, argv[1], &oa, napi_float64_array, 0) &&
              get_typed(env, argv[2], &ka, napi_float64_array, 0) && get_typed(env, argv[3], &ba, napi_float64_array, 1),
          "x, out, kernel must be Float64Arrays, bias a Float64Array or null");
  REQUIRE(get_geom(env, argv[4], 12, g), "geom must be an Int32Array of 12 non-negative values");
  const int64_t inH = g[0], inW = g[1], cin = g[2], outH = g[3], outW = g[4], kh = g[5], kw = g[6], sh = g[7], sw = g[8],
                padTop = g[9], padLeft = g[10], cout = g[11];
  REQUIRE(xa.n == (size_t)smul4(inH, inW, cin, LANES) && oa.n == (size_t)smul4(outH, outW, cout, LANES) &&
              ka.n == (size_t)smul4(kh, kw, cin, cout) && (ba.p == NULL || ba.n == (size_t)cout),
          "array lengths do not match geom");
  const double *x = xa.p, *k = ka.p, *bias = ba.p;
  double *out = oa.p;
  /* Per output position: the in-bounds taps in the reference's (dy, dx, ci) order, then one register
   * accumulator per output channel over them, so every sum runs in the same order as the reference. */
  const int64_t maxTaps = kh * kw * cin;
  const double **xs = malloc(sizeof(double *) * (size_t)(maxTaps > 0 ? maxTaps : 1));
  int64_t *ks = malloc(sizeof(int64_t) * (size_t)(maxTaps > 0 ? maxTaps : 1));
  if (!xs || !ks) {
    free(xs);
    free(ks);
    napi_throw_error(env, NULL, "efftrain-shift: conv2d: out of memory");
    return NULL;
  }
  for (int64_t oy = 0; oy < outH; oy++) {
    for (int64_t ox = 0; ox < outW; ox++) {
      int64_t nt = 0;
      for (int64_t dy = 0; dy < kh; dy++) {
        const int64_t iy = oy * sh + dy - padTop;
        if (iy < 0 || iy >= inH) continue;
        for (int64_t dx = 0; dx < kw; dx++) {
          const int64_t ix = ox * sw + dx - padLeft;
          if (ix < 0 || ix >= inW) continue;
          for (int64_t ci = 0; ci < cin; ci++, nt++) {
            xs[nt] = x + ((iy * inW + ix) * cin + ci) * LANES;
            ks[nt] = ((dy * kw + dx) * cin + ci) * cout;
          }
        }
      }
      double *o = out + (oy * outW + ox) * cout * LANES;
      for (int64_t co = 0; co < cout; co++) {
        vd a0 = splat_d(bias ? bias[co] : 0), a1 = a0;
        for (int64_t t = 0; t < nt; t++) {
          const vd kv = splat_d(k[ks[t] + co]);
          a0 = mac_nz(a0, ld_d(xs[t]), kv);
          a1 = mac_nz(a1, ld_d(xs[t] + DL), kv);
        }
        st_d(o + co * LANES, a0);
        st_d(o + co * LANES + DL, a1);
      }
    }
  }
  free(xs);
  free(ks);
  return NULL;
}

#undef FN
#define FN "dense"
static napi_value dense(napi_env env, napi_callback_info info) {
  ARGS(6);
  arr_t xa, oa, ka, ba;
  int64_t nin, units;
  REQUIRE(get_typed(env, argv[0], &xa, napi_float64_array, 0) && get_typed(env, argv[1], &oa, napi_float64_array, 0) &&
              get_typed(env, argv[2], &ka, napi_float64_array, 0) && get_typed(env, argv[3], &ba, napi_float64_array, 1),
          "x, out, kernel must be Float64Arrays, bias a Float64Array or null");
  REQUIRE(get_int(env, argv[4], &nin) && get_int(env, argv[5], &units) && nin > 0 && units > 0, "inFeatures, units must be positive integers");
  REQUIRE(xa.n == (size_t)smul(nin, LANES) && oa.n == (size_t)smul(units, LANES) && ka.n == (size_t)smul(nin, units) &&
              (ba.p == NULL || ba.n == (size_t)units),
          "array lengths do not match");
  const double *x = xa.p, *k = ka.p, *bias = ba.p;
  double *o = oa.p;
  for (int64_t j = 0; j < units; j++) { /* one register accumulator per unit, inputs in the reference's order */
    vd a0 = splat_d(bias ? bias[j] : 0), a1 = a0;
    for (int64_t i = 0; i < nin; i++) {
      const vd kv = splat_d(k[i * units + j]);
      a0 = mac_nz(a0, ld_d(x + i * LANES), kv);
      a1 = mac_nz(a1, ld_d(x + i * LANES + DL), kv);
    }
    st_d(o + j * LANES, a0);
    st_d(o + j * LANES + DL, a1);
  }
  return NULL;
}

#undef FN
#define FN "affine"
static napi_value affine(napi_env env, napi_callback_info info) {
  ARGS(3);
  arr_t xa, sa, fa;
  REQUIRE(get_typed(env, argv[0], &xa, napi_float64_array, 0) && get_typed(env, argv[1], &sa, napi_float64_array, 0) &&
              get_typed(env, argv[2], &fa, napi_float64_array, 0),
          "x, scale, offset must be Float64Arrays");
  const size_t c = sa.n;
  REQUIRE(c > 0 && fa.n == c && xa.n % (c * LANES) == 0, "array lengths do not match");
  double *x = xa.p;
  const double *sc = sa.p, *of = fa.p;
  const size_t elems = xa.n / LANES;
  for (size_t e = 0, ch = 0; e < elems; e++) {
    for (int h = 0; h < LANES; h += DL) st_d(x + e * LANES + h, ld_d(x + e * LANES + h) * splat_d(sc[ch]) + splat_d(of[ch]));
    if (++ch == c) ch = 0;
  }
  return NULL;
}

#undef FN
#define FN "relu"
static napi_value relu(napi_env env, napi_callback_info info) {
  ARGS(1);
  arr_t xa;
  REQUIRE(get_arr(env, argv[0], &xa, 0) && (xa.t == napi_float64_array || xa.t == napi_int32_array) && xa.n % LANES == 0,
          "x must be a Float64Array or Int32Array of whole blocks");
  if (xa.t == napi_int32_array) {
    int32_t *x = xa.p;
    for (size_t i = 0; i < xa.n; i++) x[i] = x[i] < 0 ? 0 : x[i];
  } else {
    double *x = xa.p;
    for (size_t i = 0; i < xa.n; i += DL) {
      const vd v = ld_d(x + i);
      st_d(x + i, select_d(v < 0, splat_d(0), v)); /* -0 and NaN stay, as `if (x < 0) x = 0` */
    }
  }
  return NULL;
}

#undef FN
#define FN "maxPool"
static napi_value max_pool(napi_env env, napi_callback_info info) {
  ARGS(3);
  arr_t xa, oa;
  int64_t g[9];
  REQUIRE(get_arr(env, argv[0], &xa, 0) && get_arr(env, argv[1], &oa, 0) && xa.t == oa.t &&
              (xa.t == napi_float64_array || xa.t == napi_int32_array),
          "x and out must both be Float64Arrays or both Int32Arrays");
  REQUIRE(get_geom(env, argv[2], 9, g), "geom must be an Int32Array of 9 non-negative values");
  const int64_t inH = g[0], inW = g[1], c = g[2], outH = g[3], outW = g[4], ph = g[5], pw = g[6], sh = g[7], sw = g[8];
  REQUIRE(xa.n == (size_t)smul4(inH, inW, c, LANES) && oa.n == (size_t)smul4(outH, outW, c, LANES) && ph > 0 && pw > 0 &&
              (outH == 0 || (outH - 1) * sh + ph <= inH) && (outW == 0 || (outW - 1) * sw + pw <= inW),
          "array lengths do not match geom");
  for (int64_t oy = 0; oy < outH; oy++) {
    for (int64_t ox = 0; ox < outW; ox++) {
      for (int64_t ch = 0; ch < c; ch++) {
        const int64_t o = ((oy * outW + ox) * c + ch) * LANES;
        if (xa.t == napi_int32_array) {
          const int32_t *x = xa.p;
          int32_t *out = oa.p;
          for (int s = 0; s < LANES; s++) {
            int32_t m = INT32_MIN;
            for (int64_t dy = 0; dy < ph; dy++)
              for (int64_t dx = 0; dx < pw; dx++) {
                const int32_t v = x[(((oy * sh + dy) * inW + (ox * sw + dx)) * c + ch) * LANES + s];
                if (v > m) m = v;
              }
            out[o + s] = m;
          }
        } else {
          const double *x = xa.p;
          for (int h = 0; h < LANES; h += DL) {
            vd m = splat_d(-INFINITY);
            for (int64_t dy = 0; dy < ph; dy++)
              for (int64_t dx = 0; dx < pw; dx++) {
                const vd v = ld_d(x + (((oy * sh + dy) * inW + (ox * sw + dx)) * c + ch) * LANES + h);
                m = select_d(v > m, v, m); /* `if (v > m) m = v`: NaN never wins */
              }
            st_d((double *)oa.p + o + h, m);
          }
        }
      }
    }
  }
  return NULL;
}

#undef FN
#define FN "globalAvgPool"
static napi_value global_avg_pool(napi_env env, napi_callback_info info) {
  ARGS(4);
  arr_t xa, oa;
  int64_t hw, c;
  REQUIRE(get_typed(env, argv[0], &xa, napi_float64_array, 0) && get_typed(env, argv[1], &oa, napi_float64_array, 0),
          "x, out must be Float64Arrays");
  REQUIRE(get_int(env, argv[2], &hw) && get_int(env, argv[3], &c) && hw > 0 && c > 0, "positions, channels must be positive integers");
  REQUIRE(xa.n == (size_t)smul3(hw, c, LANES) && oa.n == (size_t)smul(c, LANES), "array lengths do not match");
  const double *x = xa.p;
  double *o = oa.p;
  for (size_t e = 0; e < oa.n; e++) o[e] = 0;
  for (int64_t i = 0; i < hw; i++)
    for (int64_t e = 0; e < c * LANES; e++) o[e] += x[i * c * LANES + e];
  for (size_t e = 0; e < oa.n; e++) o[e] /= (double)hw;
  return NULL;
}

#undef FN
#define FN "toFloat"
static napi_value to_float(napi_env env, napi_callback_info info) {
  ARGS(3);
  arr_t xa, oa, sa;
  REQUIRE(get_typed(env, argv[0], &xa, napi_int32_array, 0) && get_typed(env, argv[1], &oa, napi_float64_array, 0) &&
              get_typed(env, argv[2], &sa, napi_float64_array, 0),
          "x must be an Int32Array, out and scales Float64Arrays");
  REQUIRE(oa.n == xa.n && xa.n % LANES == 0 && sa.n == LANES, "array lengths do not match");
  const int32_t *x = xa.p;
  double *o = oa.p;
  const double *sc = sa.p;
  for (size_t i = 0; i < xa.n; i += LANES)
    for (int s = 0; s < LANES; s++) o[i + s] = (double)x[i + s] * sc[s];
  return NULL;
}

#undef FN
#define FN "maxAbs"
static napi_value max_abs(napi_env env, napi_callback_info info) {
  ARGS(2);
  arr_t xa, oa;
  REQUIRE(get_arr(env, argv[0], &xa, 0) && (xa.t == napi_float64_array || xa.t == napi_int32_array) && xa.n % LANES == 0,
          "x must be a Float64Array or Int32Array of whole blocks");
  REQUIRE(get_typed(env, argv[1], &oa, napi_float64_array, 0) && oa.n == LANES, "out must be a Float64Array of one value per lane");
  double m[LANES];
  if (xa.t == napi_int32_array) {
    const int32_t *x = xa.p;
    uint32_t mu[LANES] = {0}; /* |INT32_MIN| = 2^31 fits */
    for (size_t i = 0; i < xa.n; i += LANES)
      for (int s = 0; s < LANES; s++) {
        const uint32_t v = x[i + s] < 0 ? 0u - (uint32_t)x[i + s] : (uint32_t)x[i + s];
        mu[s] = v > mu[s] ? v : mu[s];
      }
    for (int s = 0; s < LANES; s++) m[s] = (double)mu[s];
  } else {
    const double *x = xa.p;
    for (int s = 0; s < LANES; s++) m[s] = 0;
    for (size_t i = 0; i < xa.n; i += LANES)
      for (int s = 0; s < LANES; s++) {
        const double v = x[i + s] < 0 ? -x[i + s] : x[i + s];
        m[s] = v > m[s] ? v : m[s]; /* NaN never wins, as in the reference */
      }
  }
  memcpy(oa.p, m, sizeof m);
  return NULL;
}

/* JavaScript's ToInt32(Math.round(v)): nearest integer, ties toward +∞; NaN and ±∞ give 0; wraps mod 2^32. */
static int32_t js_round_int32(double v) {
  double r = floor(v);
  if (v - r >= 0.5) r += 1; /* v − floor(v) is exact */
  if (r >= -2147483648.0 && r < 2147483648.0) return (int32_t)r;
  if (!isfinite(r)) return 0;
  double m = fmod(r, 4294967296.0);
  if (m < 0) m += 4294967296.0;
  return (int32_t)(uint32_t)m;
}

#undef FN
#define FN "quantize"
static napi_value quantize(napi_env env, napi_callback_info info) {
  ARGS(3);
  arr_t xa, oa, sa;
  REQUIRE(get_typed(env, argv[0], &xa, napi_float64_array, 0) && get_typed(env, argv[1], &oa, napi_int32_array, 0) &&
              get_typed(env, argv[2], &sa, napi_float64_array, 0),
          "x must be a Float64Array, out an Int32Array, scales a Float64Array");
  REQUIRE(oa.n == xa.n && xa.n % LANES == 0 && sa.n == LANES, "array lengths do not match");
  const double *x = xa.p, *sc = sa.p;
  int32_t *o = oa.p;
  /* The common case, vectorised: v = x·scale in [−2^31, 2^31 − 1/2); floor via truncation to int64. Any
   * other lane (NaN, ±∞, out of range) sends the whole array through the scalar js_round_int32. */
  int bad = 0;
  const vd lo = splat_d(-2147483648.0), hi = splat_d(2147483647.5), half = splat_d(0.5), one = splat_d(1);
  for (size_t i = 0; i < xa.n; i += LANES)
    for (int h = 0; h < LANES; h += DL) {
      const vd v = ld_d(x + i + h) * ld_d(sc + h);
      const vl ok = (v >= lo) & (v < hi);
      const vd vs = select_d(ok, v, splat_d(0));
      const vd t = __builtin_convertvector(__builtin_convertvector(vs, vl), vd); /* trunc(vs) */
      const vd fl = select_d(t > vs, t - one, t);                               /* floor(vs) */
      const vd r = select_d(vs - fl >= half, fl + one, fl);                      /* ties up */
      const vl ri = __builtin_convertvector(r, vl);
      for (int s = 0; s < DL; s++) o[i + h + s] = (int32_t)ri[s];
      for (int s = 0; s < DL; s++) bad |= ok[s] == 0;
    }
  if (bad)
    for (size_t i = 0; i < xa.n; i += LANES)
      for (int s = 0; s < LANES; s++) o[i + s] = js_round_int32(x[i + s] * sc[s]);
  return NULL;
}

#undef FN
#define FN "shiftRight"
static napi_value shift_right(napi_env env, napi_callback_info info) {
  ARGS(2);
  arr_t xa, ra;
  REQUIRE(get_typed(env, argv[0], &xa, napi_int32_array, 0) && get_typed(env, argv[1], &ra, napi_int32_array, 0),
          "x and r must be Int32Arrays");
  REQUIRE(xa.n % LANES == 0 && ra.n == LANES, "array lengths do not match");
  int32_t *x = xa.p;
  const int32_t *r = ra.p;
  for (int s = 0; s < LANES; s++) {
    const int32_t k = r[s];
    if (k <= 0) continue;
    for (size_t i = s; i < xa.n; i += LANES) x[i] = k > 31 ? 0 : (x[i] >> k) + ((x[i] >> (k - 1)) & 1);
  }
  return NULL;
}

/*
 * The shift-add kernel for one output position (two = 0) or two (two = 1; window bases b0, b1), every output
 * channel: acc = bias + Σ_k ((Σ_{+} x) − (Σ_{−} x)) << k over the ShiftProgram's segments (S3 Sec. 1/3;
 * DeepShift Sec. 3.3). Adds and shifts only; wrapping uint32 arithmetic equals the reference's int32 `| 0`.
 */
static inline __attribute__((always_inline)) void shift_positions(const int32_t *b0, const int32_t *b1, const int two, const int32_t *seg,
                                                                  const int32_t *offs, const int32_t *bias, int64_t outC, int64_t nShift,
                                                                  int64_t doRelu, int32_t *o0, int32_t *o1) {
  for (int64_t co = 0; co < outC; co++, bias += LANES, o0 += LANES, o1 += LANES) {
    vu acc0 = ld_u(bias), acc1 = acc0;
    for (int64_t k = 0; k < nShift; k++, seg += 2) {
      vu p0 = {0}, n0 = {0}, p1 = {0}, n1 = {0};
      for (int32_t t = seg[0]; t < seg[1]; t++) {
        const size_t off = (size_t)offs[t] << LANE_BITS;
        p0 += ld_u(b0 + off);
        if (two) p1 += ld_u(b1 + off);
      }
      for (int32_t t = seg[1]; t < seg[2]; t++) {
        const size_t off = (size_t)offs[t] << LANE_BITS;
        n0 += ld_u(b0 + off);
        if (two) n1 += ld_u(b1 + off);
      }
      acc0 += (p0 - n0) << (uint32_t)k;
      if (two) acc1 += (p1 - n1) << (uint32_t)k;
    }
    if (doRelu) {
      acc0 &= (vu)~((vi)acc0 < 0);
      acc1 &= (vu)~((vi)acc1 < 0);
    }
    st_u(o0, acc0);
    if (two) st_u(o1, acc1);
  }
}

#undef FN
#define FN "shiftLayer"
static napi_value shift_layer(napi_env env, napi_callback_info info) {
  ARGS(7);
  arr_t xa, pa, oa, pta, ofa, ba;
  int64_t g[14];
  REQUIRE(get_typed(env, argv[0], &xa, napi_int32_array, 0) && get_typed(env, argv[1], &pa, napi_int32_array, 1) &&
              get_typed(env, argv[2], &oa, napi_int32_array, 0) && get_typed(env, argv[3], &pta, napi_int32_array, 0) &&
              get_typed(env, argv[4], &ofa, napi_int32_array, 0) && get_typed(env, argv[5], &ba, napi_int32_array, 0),
          "x, out, ptr, offs, bias must be Int32Arrays, pad an Int32Array or null");
  REQUIRE(get_geom(env, argv[6], 14, g), "geom must be an Int32Array of 14 non-negative values");
  const int64_t inH = g[0], inW = g[1], cin = g[2], padTop = g[3], padLeft = g[4], hp = g[5], wp = g[6], outH = g[7],
                outW = g[8], outC = g[9], nShift = g[10], rowStep = g[11], colStep = g[12], doRelu = g[13];
  REQUIRE(xa.n == (size_t)smul4(inH, inW, cin, LANES) && oa.n == (size_t)smul4(outH, outW, outC, LANES) &&
              ba.n == (size_t)smul(outC, LANES) && pta.n == (size_t)sadd(smul3(outC, nShift, 2), 1) && nShift <= 31 && outH > 0 && outW > 0,
          "array lengths do not match geom");
  const int32_t *ptr = pta.p, *offs = ofa.p;
  REQUIRE(ptr[0] >= 0 && (size_t)ptr[pta.n - 1] <= ofa.n, "ptr out of range");
  for (size_t i = 1; i < pta.n; i++) REQUIRE(ptr[i] >= ptr[i - 1], "ptr must be non-decreasing");
  int64_t maxOff = 0;
  for (size_t t = 0; t < ofa.n; t++) {
    REQUIRE(offs[t] >= 0, "negative offset");
    if (offs[t] > maxOff) maxOff = offs[t];
  }
  const int32_t *src = xa.p;
  size_t srcElems = (size_t)(inH * inW * cin);
  if (pa.p != NULL) {
    REQUIRE(pa.n == (size_t)smul4(hp, wp, cin, LANES) && padTop + inH <= hp && padLeft + inW <= wp, "pad length does not match geom");
    int32_t *pad = pa.p; /* its border is zero and never written */
    const size_t row = (size_t)(inW * cin * LANES);
    for (int64_t y = 0; y < inH; y++) memcpy(pad + ((padTop + y) * wp + padLeft) * cin * LANES, src + y * row, row * 4);
    src = pad;
    srcElems = (size_t)(hp * wp * cin);
  }
  REQUIRE((size_t)sadd(sadd(smul(outH - 1, rowStep), smul(outW - 1, colStep)), maxOff) < srcElems || ofa.n == 0, "offsets reach past the input");
  const int32_t *bias = ba.p;
  int32_t *o = oa.p;
  const size_t rs = (size_t)rowStep << LANE_BITS, cs = (size_t)colStep << LANE_BITS, oc = (size_t)outC << LANE_BITS;
  const int32_t *rowBase = src;
  for (int64_t oy = 0; oy < outH; oy++) {
    const int32_t *base = rowBase;
    int64_t ox = 0;
    for (; ox + 1 < outW; ox += 2) { /* two output columns share each offset load */
      shift_positions(base, base + cs, 1, ptr, offs, bias, outC, nShift, doRelu, o, o + oc);
      base += cs + cs;
      o += oc + oc;
    }
    if (ox < outW) {
      shift_positions(base, base, 0, ptr, offs, bias, outC, nShift, doRelu, o, o);
      o += oc;
    }
    rowBase += rs;
  }
  return NULL;
}

#undef FN
#define FN "output"
static napi_value output(napi_env env, napi_callback_info info) {
  ARGS(5);
  arr_t xa, oa;
  int64_t b0, n, size;
  REQUIRE(get_typed(env, argv[0], &xa, napi_float64_array, 0) && get_arr(env, argv[1], &oa, 0) &&
              (oa.t == napi_float32_array || oa.t == napi_float64_array),
          "x must be a Float64Array, out a Float32Array or Float64Array");
  REQUIRE(get_int(env, argv[2], &b0) && get_int(env, argv[3], &n) && get_int(env, argv[4], &size) && b0 >= 0 && n >= 0 && size > 0,
          "b0, n, outSize must be non-negative integers");
  REQUIRE(xa.n == (size_t)smul(size, LANES) && oa.n >= (size_t)smul(n, size), "array lengths do not match");
  const double *x = xa.p;
  for (int s = 0; s < LANES && b0 + s < n; s++)
    for (int64_t j = 0; j < size; j++) {
      if (oa.t == napi_float32_array) ((float *)oa.p)[(b0 + s) * size + j] = (float)x[j * LANES + s];
      else ((double *)oa.p)[(b0 + s) * size + j] = x[j * LANES + s];
    }
  return NULL;
}

static napi_value config(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  const char *isa =
#if defined(__AVX512F__)
      "AVX-512";
#elif defined(__AVX2__)
      "AVX2";
#elif defined(__SSE2__)
      "SSE2";
#elif defined(__ARM_NEON)
      "NEON";
#else
      "generic";
#endif
  char buf[96];
  snprintf(buf, sizeof buf, "%d-sample blocks, %s", LANES, isa);
  if (napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &out) != napi_ok) return NULL;
  return out;
}

NAPI_MODULE_INIT() {
  napi_value abi, lanes;
  if (napi_create_int32(env, EFFTRAIN_SHIFT_ABI, &abi) != napi_ok || napi_create_int32(env, LANES, &lanes) != napi_ok) return NULL;
  napi_property_descriptor props[] = {
      {"abi", NULL, NULL, NULL, NULL, abi, napi_enumerable, NULL},
      {"lanes", NULL, NULL, NULL, NULL, lanes, napi_enumerable, NULL},
      {"config", NULL, config, NULL, NULL, NULL, napi_enumerable, NULL},
      {"loadInput", NULL, load_input, NULL, NULL, NULL, napi_enumerable, NULL},
      {"conv2d", NULL, conv2d, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dense", NULL, dense, NULL, NULL, NULL, napi_enumerable, NULL},
      {"affine", NULL, affine, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relu", NULL, relu, NULL, NULL, NULL, napi_enumerable, NULL},
      {"maxPool", NULL, max_pool, NULL, NULL, NULL, napi_enumerable, NULL},
      {"globalAvgPool", NULL, global_avg_pool, NULL, NULL, NULL, napi_enumerable, NULL},
      {"toFloat", NULL, to_float, NULL, NULL, NULL, napi_enumerable, NULL},
      {"maxAbs", NULL, max_abs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"quantize", NULL, quantize, NULL, NULL, NULL, napi_enumerable, NULL},
      {"shiftRight", NULL, shift_right, NULL, NULL, NULL, napi_enumerable, NULL},
      {"shiftLayer", NULL, shift_layer, NULL, NULL, NULL, napi_enumerable, NULL},
      {"output", NULL, output, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}
