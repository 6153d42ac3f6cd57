/*
 * efftrain-blas: single-precision GEMM from OpenBLAS for the wasm backend, over the wasm heap.
 *
 * The wasm backend keeps every tensor in one ArrayBuffer (the emscripten heap). JavaScript passes
 * that buffer and byte offsets, so GEMM reads and writes tensors in place: no copies in or out.
 *
 *   sgemm(heap, transA, transB, M, N, K, aOff, bOff, cOff, batch, aStride, bStride, cStride, beta[, threads])
 *     for i in 0..batch: C_i = op(A_i) · op(B_i) + beta · C_i   (row-major, op = transpose or not)
 *     where X_i starts at xOff + i·xStride bytes; a stride of 0 shares one matrix across the batch.
 *   im2col(heap, xOff, pOff, geom, b0, nb)     patches[p, (kh·KW + kw)·CI + ci] = x[b, oh·SH+kh−top, ow·SW+kw−left, ci]
 *                                               (0 outside the image) for images b0..b0+nb, p = ((b−b0)·OH + oh)·OW + ow
 *   col2im(heap, cOff, dxOff, geom, b0, nb)     the adjoint: dx[b, ih, iw, ci] += cols[p, (kh·KW + kw)·CI + ci]
 *   maxPoolGrad(heap, xOff, dyOff, dxOff, geom) dx = 0, then each window's dy goes to the first position
 *                                               holding the window maximum (strict >, row-major; tfjs's rule)
 *     geom = [B, H, W, C, OH, OW, KH, KW, SH, SW, top, left] (NHWC, float32; C is CI for the conv helpers)
 *   adamw(heap, [p, m, v, g, pOut, mOut, vOut], n, [b1, 1−b1, b2, 1−b2, epsC2, stepSize, decay, decayOn])
 *     one pass of AdamW over n floats (src/train/optimizers.ts, Loshchilov & Hutter 2019 Alg. 2), in the
 *     same float32 operation order as the unfused tfjs ops, so the result is bit-identical to them:
 *       m' = m·b1 + g·(1−b1);  v' = v·b2 + (g·g)·(1−b2);  p' = p − (m' / (√v' + epsC2))·stepSize − p·decay
 *     (the decay term only when decayOn ≠ 0); every coefficient is rounded to float32 first, as tfjs does.
 *   sumLeading(heap, xOff, outOff, rows, cols)  out[j] = Σ_i x[i, j] (float32, rows in order): a Sum over
 *                                               the leading axes, i.e. a bias gradient
 *   softmaxCE(heap, yOff, zOff, outOff, rows, cols)
 *     out[0] = (1/rows) Σ_r Σ_c −y[r,c]·(z[r,c] − lse_r), lse_r = max_r + log Σ_c exp(z[r,c] − max_r): the mean
 *     softmax cross-entropy of logits z against (soft or one-hot) labels y, as tf.losses.softmaxCrossEntropy
 *   softmaxCEGrad(heap, yOff, zOff, dyOff, dxOff, rows, cols)
 *     dx[r,c] = (dy[0]/rows)·(softmax(z)[r,c] − y[r,c]): its gradient for the logits (tfjs's rule)
 *   reluGrad(heap, dyOff, xOff, dxOff, n)       dx = dy·step(x) (step = 1 for x > 0, NaN for NaN, else 0):
 *                                               tfjs's Relu gradient, the same float32 product
 *   addRow(heap, xOff, bOff, outOff, rows, cols) out[r,c] = x[r,c] + b[c] (a bias add)
 *   layerNorm(heap, xOff, gOff, bOff, yOff, rows, d, eps)
 *     y = (x − μ)·(σ² + eps)^(−1/2)·g + b per row of x [rows, d] (μ, σ² the row's mean and biased variance)
 *   layerNormGrad(heap, dyOff, xOff, gOff, dxOff, dgOff, dbOff, rows, d, eps)
 *     with x̂ = (x − μ)·rstd and ĝ = dy·g: dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), dg = Σ_rows dy·x̂, db = Σ_rows dy
 *   gelu(heap, xOff, yOff, n)                   y = x·σ(u), u = x·(c + k·x²), c = 2√(2/π), k = 0.044715·c: the tanh
 *                                               GELU (Hendrycks & Gimpel 2016) as src/models/ffn.ts writes it
 *   geluGrad(heap, dyOff, xOff, dxOff, n)       dx = dy·(σ(u) + x·σ(u)(1 − σ(u))·(c + 3k·x²))
 *     σ through a polynomial exp (Cephes' expf: about 1 ulp), so the loops vectorise
 *   broadcast(heap, xOff, outOff, shape, strides) out (row-major, `shape`) = x read with element `strides`
 *                                               (0 on broadcast axes; rank ≤ 8): broadcastTo without Tile
 *   setThreads(n), threads()   default thread count of sgemm calls without their own (1 at load)
 *   config()
 *
 * Threads. OpenBLAS has one process-wide thread count and thread pool, while every Node worker
 * thread that loads this addon calls it independently. So:
 *   - the count is 1 at all times except inside a call that asked for more (sgemm's optional 15th
 *     argument, else setThreads' default): such a call holds `blas_lock` exclusively, sets the count,
 *     runs, and sets it back to 1; single-threaded calls hold it shared and run concurrently;
 *   - fork() (child_process from any thread) first takes `blas_lock` exclusively (pthread_atfork,
 *     registered after OpenBLAS's own handler, so it runs before it): OpenBLAS's prepare handler shuts
 *     its pool down, which deadlocked when another thread was inside a multi-threaded product;
 *   - the count starts at 1 when the addon loads: OPENBLAS_NUM_THREADS set by a worker thread's
 *     process.env never reaches the real environment, so OpenBLAS may have started with one thread
 *     per core.
 * Nothing else is shared between calls, so worker threads may load, use and drop the addon freely.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include <node_api.h>
#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#define CHECK(call)                                                                                 \
  do {                                                                                              \
    if ((call) != napi_ok) {                                                                        \
      napi_throw_error(env, NULL, "efftrain-blas: Node-API call failed: " #call);                   \
      return NULL;                                                                                  \
    }                                                                                               \
  } while (0)

static int get_i64(napi_env env, napi_value v, int64_t *out) { return napi_get_value_int64(env, v, out) == napi_ok; }

static pthread_rwlock_t blas_lock;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
/* Threads for sgemm calls that do not pass a count (setThreads). */
static volatile int default_threads = 1;

static void lock_exclusive(void) { pthread_rwlock_wrlock(&blas_lock); }
static void unlock_blas(void) { pthread_rwlock_unlock(&blas_lock); }

static void blas_init_once(void) {
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  /* A waiting fork or multi-threaded call must not starve behind a stream of shared holders. */
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&blas_lock, &attr);
  pthread_rwlockattr_destroy(&attr);
  pthread_atfork(lock_exclusive, unlock_blas, unlock_blas);
  openblas_set_num_threads(1);
}

/* True when [off, off + (batch-1)·stride + floats·4) lies inside a buffer of `len` bytes. */
static int in_bounds(int64_t off, int64_t stride, int64_t batch, int64_t floats, size_t len) {
  if (off < 0 || stride < 0 || off % 4 != 0 || stride % 4 != 0) return 0;
  int64_t end = off + (batch - 1) * stride + floats * 4;
  return end >= off && (uint64_t)end <= (uint64_t)len;
}

static napi_value sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 15;
  napi_value argv[15];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 14 && argc != 15) {
    napi_throw_type_error(env, NULL, "efftrain-blas: sgemm expects 14 arguments (15 with a thread count)");
    return NULL;
  }
  int64_t threads = default_threads;
  if (argc == 15 && (!get_i64(env, argv[14], &threads) || threads < 1 || threads > 256)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: sgemm thread count must be an integer in 1..256");
    return NULL;
  }
  void *data = NULL;
  size_t len = 0;
  bool isAB = false;
  CHECK(napi_is_arraybuffer(env, argv[0], &isAB));
  if (!isAB) {
    /* A SharedArrayBuffer or detached buffer also lands here. */
    napi_throw_type_error(env, NULL, "efftrain-blas: sgemm expects an ArrayBuffer heap");
    return NULL;
  }
  CHECK(napi_get_arraybuffer_info(env, argv[0], &data, &len));
  bool tA = false, tB = false;
  CHECK(napi_get_value_bool(env, argv[1], &tA));
  CHECK(napi_get_value_bool(env, argv[2], &tB));
  int64_t v[11];
  for (int i = 0; i < 11; i++) {
    if (!get_i64(env, argv[3 + i], &v[i])) {
      napi_throw_type_error(env, NULL, "efftrain-blas: sgemm sizes and offsets must be numbers");
      return NULL;
    }
  }
  double beta = 0;
  CHECK(napi_get_value_double(env, argv[13], &beta));
  int64_t M = v[0], N = v[1], K = v[2], aOff = v[3], bOff = v[4], cOff = v[5], batch = v[6];
  int64_t aStr = v[7], bStr = v[8], cStr = v[9];
  if (M < 0 || N < 0 || K < 0 || batch < 0 || M > INT32_MAX || N > INT32_MAX || K > INT32_MAX) {
    napi_throw_range_error(env, NULL, "efftrain-blas: sgemm sizes out of range");
    return NULL;
  }
  if (M == 0 || N == 0 || batch == 0) return NULL;
  if (data == NULL || !in_bounds(aOff, aStr, batch, M * K, len) || !in_bounds(bOff, bStr, batch, K * N, len) ||
      !in_bounds(cOff, cStr, batch, M * N, len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: sgemm operand outside the heap (was the heap grown?)");
    return NULL;
  }
  char *base = (char *)data;
  if (threads > 1) {
    pthread_rwlock_wrlock(&blas_lock);
    openblas_set_num_threads((int)threads);
  } else {
    pthread_rwlock_rdlock(&blas_lock);
  }
  for (int64_t i = 0; i < batch; i++) {
    float *a = (float *)(base + aOff + i * aStr);
    float *b = (float *)(base + bOff + i * bStr);
    float *c = (float *)(base + cOff + i * cStr);
    if (K == 0) {
      if (beta == 0) memset(c, 0, (size_t)(M * N) * sizeof(float));
      continue;
    }
    cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, 1.0f,
                a, tA ? (int)M : (int)K, b, tB ? (int)K : (int)N, (float)beta, c, (int)N);
  }
  if (threads > 1) openblas_set_num_threads(1);
  pthread_rwlock_unlock(&blas_lock);
  return NULL;
}

/* Reads the common (heap, offsets…, geom[12], ints…) arguments; returns 0 after throwing. */
typedef struct {
  char *base;
  size_t len;
  int64_t off[3];
  int64_t g[12];
  int64_t extra[2];
} geom_args;

static int read_geom_args(napi_env env, napi_callback_info info, int nOff, int nExtra, geom_args *a) {
  size_t argc = 6;
  napi_value argv[6];
  bool isAB = false, isArr = false;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != (size_t)(1 + nOff + 1 + nExtra) ||
      napi_is_arraybuffer(env, argv[0], &isAB) != napi_ok || !isAB) {
    napi_throw_type_error(env, NULL, "efftrain-blas: expected (heap: ArrayBuffer, offsets…, geom: number[12], …)");
    return 0;
  }
  if (napi_get_arraybuffer_info(env, argv[0], &data, &a->len) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "efftrain-blas: heap has no data (detached?)");
    return 0;
  }
  a->base = (char *)data;
  for (int i = 0; i < nOff; i++) {
    if (!get_i64(env, argv[1 + i], &a->off[i])) {
      napi_throw_type_error(env, NULL, "efftrain-blas: offsets must be numbers");
      return 0;
    }
  }
  napi_value gv = argv[1 + nOff];
  uint32_t glen = 0;
  if (napi_is_array(env, gv, &isArr) != napi_ok || !isArr || napi_get_array_length(env, gv, &glen) != napi_ok || glen != 12) {
    napi_throw_type_error(env, NULL, "efftrain-blas: geom must be an array of 12 numbers");
    return 0;
  }
  for (uint32_t i = 0; i < 12; i++) {
    napi_value e;
    if (napi_get_element(env, gv, i, &e) != napi_ok || !get_i64(env, e, &a->g[i]) || a->g[i] < 0 || a->g[i] > INT32_MAX) {
      napi_throw_range_error(env, NULL, "efftrain-blas: geom entries must be integers in 0..2^31");
      return 0;
    }
  }
  for (int i = 0; i < nExtra; i++) {
    if (!get_i64(env, argv[2 + nOff + i], &a->extra[i]) || a->extra[i] < 0) {
      napi_throw_range_error(env, NULL, "efftrain-blas: batch range must be non-negative integers");
      return 0;
    }
  }
  return 1;
}

enum { GB, GH, GW, GC, GOH, GOW, GKH, GKW, GSH, GSW, GTOP, GLEFT };

static napi_value im2col_or_col2im(napi_env env, napi_callback_info info, int adjoint) {
  geom_args a;
  if (!read_geom_args(env, info, 2, 2, &a)) return NULL;
  const int64_t *g = a.g;
  int64_t b0 = a.extra[0], nb = a.extra[1];
  int64_t kkc = g[GKH] * g[GKW] * g[GC];
  int64_t rows = nb * g[GOH] * g[GOW];
  int64_t img = g[GH] * g[GW] * g[GC];
  /* off[0] = x (im2col) or cols (col2im); off[1] = patches (im2col) or dx (col2im). */
  int64_t xOff = adjoint ? a.off[1] : a.off[0], pOff = adjoint ? a.off[0] : a.off[1];
  if (b0 + nb > g[GB] || !in_bounds(xOff, 0, 1, g[GB] * img, a.len) || !in_bounds(pOff, 0, 1, rows * kkc, a.len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: im2col/col2im operand outside the heap");
    return NULL;
  }
  float *x = (float *)(a.base + xOff);
  float *p = (float *)(a.base + pOff);
  const int64_t H = g[GH], W = g[GW], C = g[GC];
  for (int64_t b = b0; b < b0 + nb; b++) {
    for (int64_t oh = 0; oh < g[GOH]; oh++) {
      for (int64_t ow = 0; ow < g[GOW]; ow++) {
        for (int64_t kh = 0; kh < g[GKH]; kh++) {
          int64_t ih = oh * g[GSH] + kh - g[GTOP];
          for (int64_t kw = 0; kw < g[GKW]; kw++, p += C) {
            int64_t iw = ow * g[GSW] + kw - g[GLEFT];
            int inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
            float *px = x + ((b * H + ih) * W + iw) * C;
            if (adjoint) {
              if (inside) for (int64_t c = 0; c < C; c++) px[c] += p[c];
            } else if (inside) {
              memcpy(p, px, (size_t)C * sizeof(float));
            } else {
              memset(p, 0, (size_t)C * sizeof(float));
            }
          }
        }
      }
    }
  }
  return NULL;
}

static napi_value im2col(napi_env env, napi_callback_info info) { return im2col_or_col2im(env, info, 0); }
static napi_value col2im(napi_env env, napi_callback_info info) { return im2col_or_col2im(env, info, 1); }

static napi_value max_pool_grad(napi_env env, napi_callback_info info) {
  geom_args a;
  if (!read_geom_args(env, info, 3, 0, &a)) return NULL;
  const int64_t *g = a.g;
  const int64_t B = g[GB], H = g[GH], W = g[GW], C = g[GC], OH = g[GOH], OW = g[GOW];
  if (!in_bounds(a.off[0], 0, 1, B * H * W * C, a.len) || !in_bounds(a.off[1], 0, 1, B * OH * OW * C, a.len) ||
      !in_bounds(a.off[2], 0, 1, B * H * W * C, a.len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: maxPoolGrad operand outside the heap");
    return NULL;
  }
  const float *x = (const float *)(a.base + a.off[0]);
  const float *dy = (const float *)(a.base + a.off[1]);
  float *dx = (float *)(a.base + a.off[2]);
  memset(dx, 0, (size_t)(B * H * W * C) * sizeof(float));
  for (int64_t b = 0; b < B; b++) {
    for (int64_t oh = 0; oh < OH; oh++) {
      int64_t r0 = oh * g[GSH] - g[GTOP];
      int64_t rMin = r0 < 0 ? 0 : r0, rMax = r0 + g[GKH] < H ? r0 + g[GKH] : H;
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t c0 = ow * g[GSW] - g[GLEFT];
        int64_t cMin = c0 < 0 ? 0 : c0, cMax = c0 + g[GKW] < W ? c0 + g[GKW] : W;
        const float *dyp = dy + ((b * OH + oh) * OW + ow) * C;
        for (int64_t ch = 0; ch < C; ch++) {
          float best = -INFINITY;
          int64_t at = -1;
          for (int64_t r = rMin; r < rMax; r++) {
            for (int64_t col = cMin; col < cMax; col++) {
              int64_t i = ((b * H + r) * W + col) * C + ch;
              if (x[i] > best) {
                best = x[i];
                at = i;
              }
            }
          }
          if (at >= 0) dx[at] += dyp[ch];
        }
      }
    }
  }
  return NULL;
}

/* Reads `count` numbers of the JS array `arr` into `out` as doubles; 0 after throwing. */
static int read_numbers(napi_env env, napi_value arr, uint32_t count, double *out, const char *what) {
  bool isArr = false;
  uint32_t len = 0;
  if (napi_is_array(env, arr, &isArr) != napi_ok || !isArr || napi_get_array_length(env, arr, &len) != napi_ok || len != count) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value e;
    if (napi_get_element(env, arr, i, &e) != napi_ok || napi_get_value_double(env, e, &out[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, what);
      return 0;
    }
  }
  return 1;
}

/* The heap argument as bytes; 0 after throwing. */
static int read_heap(napi_env env, napi_value v, char **base, size_t *len) {
  bool isAB = false;
  void *data = NULL;
  if (napi_is_arraybuffer(env, v, &isAB) != napi_ok || !isAB || napi_get_arraybuffer_info(env, v, &data, len) != napi_ok ||
      data == NULL) {
    napi_throw_type_error(env, NULL, "efftrain-blas: expected the wasm heap (a non-detached ArrayBuffer)");
    return 0;
  }
  *base = (char *)data;
  return 1;
}

/* The AdamW loop; a separate function so the compiler vectorises it (no aliasing between operands). */
static void adamw_loop(const float *restrict p, const float *restrict m, const float *restrict v, const float *restrict g,
                       float *restrict po, float *restrict mo, float *restrict vo, int64_t n, const float *c, int decay) {
  const float b1 = c[0], omb1 = c[1], b2 = c[2], omb2 = c[3], eps = c[4], step = c[5], wd = c[6];
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    float mi = m[i] * b1 + gi * omb1;
    float vi = v[i] * b2 + (gi * gi) * omb2;
    float next = p[i] - (mi / (sqrtf(vi) + eps)) * step;
    if (decay) next = next - p[i] * wd;
    mo[i] = mi;
    vo[i] = vi;
    po[i] = next;
  }
}

static napi_value adamw(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) {
    napi_throw_type_error(env, NULL, "efftrain-blas: adamw expects (heap, offsets[7], n, coefficients[8])");
    return NULL;
  }
  char *base = NULL;
  size_t len = 0;
  double offs[7], coef[8];
  int64_t n = 0;
  if (!read_heap(env, argv[0], &base, &len)) return NULL;
  if (!read_numbers(env, argv[1], 7, offs, "efftrain-blas: adamw offsets must be 7 numbers")) return NULL;
  if (!get_i64(env, argv[2], &n) || n < 0) {
    napi_throw_range_error(env, NULL, "efftrain-blas: adamw size must be a non-negative integer");
    return NULL;
  }
  if (!read_numbers(env, argv[3], 8, coef, "efftrain-blas: adamw coefficients must be 8 numbers")) return NULL;
  float *ptr[7];
  for (int i = 0; i < 7; i++) {
    int64_t o = (int64_t)offs[i];
    if ((double)o != offs[i] || !in_bounds(o, 0, 1, n, len)) {
      napi_throw_range_error(env, NULL, "efftrain-blas: adamw operand outside the heap");
      return NULL;
    }
    ptr[i] = (float *)(base + o);
  }
  float c[7];
  for (int i = 0; i < 7; i++) c[i] = (float)coef[i];
  adamw_loop(ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], ptr[5], ptr[6], n, c, coef[7] != 0);
  return NULL;
}

static napi_value sum_leading(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *base = NULL;
  size_t len = 0;
  int64_t v[4];
  if (argc != 5) {
    napi_throw_type_error(env, NULL, "efftrain-blas: sumLeading expects (heap, xOff, outOff, rows, cols)");
    return NULL;
  }
  if (!read_heap(env, argv[0], &base, &len)) return NULL;
  for (int i = 0; i < 4; i++) {
    if (!get_i64(env, argv[1 + i], &v[i]) || v[i] < 0) {
      napi_throw_range_error(env, NULL, "efftrain-blas: sumLeading offsets and sizes must be non-negative integers");
      return NULL;
    }
  }
  int64_t rows = v[2], cols = v[3];
  if (!in_bounds(v[0], 0, 1, rows * cols, len) || !in_bounds(v[1], 0, 1, cols, len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: sumLeading operand outside the heap");
    return NULL;
  }
  const float *x = (const float *)(base + v[0]);
  float *out = (float *)(base + v[1]);
  memset(out, 0, (size_t)cols * sizeof(float));
  for (int64_t r = 0; r < rows; r++) {
    const float *row = x + r * cols;
    for (int64_t j = 0; j < cols; j++) out[j] += row[j];
  }
  return NULL;
}

/* Reads (heap, n non-negative integers[, eps ≥ 0]); `eps` NULL means no trailing eps argument. 0 after throwing. */
static int read_heap_args(napi_env env, napi_callback_info info, size_t n, const char *usage, char **base, size_t *len, int64_t *out,
                          double *eps) {
  size_t argc = 12;
  napi_value argv[12];
  size_t want = n + 1 + (eps ? 1 : 0);
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  if (!read_heap(env, argv[0], base, len)) return 0;
  for (size_t i = 0; i < n; i++) {
    if (!get_i64(env, argv[1 + i], &out[i]) || out[i] < 0) {
      napi_throw_range_error(env, NULL, usage);
      return 0;
    }
  }
  if (eps && (napi_get_value_double(env, argv[n + 1], eps) != napi_ok || !(*eps >= 0))) {
    napi_throw_range_error(env, NULL, usage);
    return 0;
  }
  return 1;
}

/* Reads (heap, n non-negative integers); 0 after throwing. */
static int read_heap_ints(napi_env env, napi_callback_info info, size_t n, const char *usage, char **base, size_t *len, int64_t *out) {
  return read_heap_args(env, info, n, usage, base, len, out, NULL);
}

/* One row's log-sum-exp, computed as tfjs's logSumExp does: max + log(Σ exp(z − max)). */
static float row_lse(const float *z, int64_t cols) {
  float mx = z[0];
  for (int64_t c = 1; c < cols; c++) mx = z[c] > mx ? z[c] : mx;
  float s = 0;
  for (int64_t c = 0; c < cols; c++) s += expf(z[c] - mx);
  return mx + logf(s);
}

static napi_value softmax_ce(napi_env env, napi_callback_info info) {
  const char *usage = "efftrain-blas: softmaxCE expects (heap, yOff, zOff, outOff, rows, cols), non-negative integers";
  char *base = NULL;
  size_t len = 0;
  int64_t v[5];
  if (!read_heap_ints(env, info, 5, usage, &base, &len, v)) return NULL;
  int64_t rows = v[3], cols = v[4];
  if (rows == 0 || cols == 0 || !in_bounds(v[0], 0, 1, rows * cols, len) || !in_bounds(v[1], 0, 1, rows * cols, len) ||
      !in_bounds(v[2], 0, 1, 1, len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: softmaxCE operand outside the heap (or empty)");
    return NULL;
  }
  const float *y = (const float *)(base + v[0]);
  const float *z = (const float *)(base + v[1]);
  double total = 0;
  for (int64_t r = 0; r < rows; r++, y += cols, z += cols) {
    float lse = row_lse(z, cols), cost = 0;
    for (int64_t c = 0; c < cols; c++) cost += -((z[c] - lse) * y[c]);
    total += cost;
  }
  *(float *)(base + v[2]) = (float)(total / (double)rows);
  return NULL;
}

static napi_value softmax_ce_grad(napi_env env, napi_callback_info info) {
  const char *usage = "efftrain-blas: softmaxCEGrad expects (heap, yOff, zOff, dyOff, dxOff, rows, cols), non-negative integers";
  char *base = NULL;
  size_t len = 0;
  int64_t v[6];
  if (!read_heap_ints(env, info, 6, usage, &base, &len, v)) return NULL;
  int64_t rows = v[4], cols = v[5];
  if (rows == 0 || cols == 0 || !in_bounds(v[0], 0, 1, rows * cols, len) || !in_bounds(v[1], 0, 1, rows * cols, len) ||
      !in_bounds(v[2], 0, 1, 1, len) || !in_bounds(v[3], 0, 1, rows * cols, len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: softmaxCEGrad operand outside the heap (or empty)");
    return NULL;
  }
  const float *y = (const float *)(base + v[0]);
  const float *z = (const float *)(base + v[1]);
  float *dx = (float *)(base + v[3]);
  const float scale = *(const float *)(base + v[2]) / (float)rows;
  /* softmax = exp(z − max) / Σ exp(z − max): one exp per entry (kept in dx until the row's sum is known). */
  for (int64_t r = 0; r < rows; r++, y += cols, z += cols, dx += cols) {
    float mx = z[0];
    for (int64_t c = 1; c < cols; c++) mx = z[c] > mx ? z[c] : mx;
    float sum = 0;
    for (int64_t c = 0; c < cols; c++) sum += (dx[c] = expf(z[c] - mx));
    for (int64_t c = 0; c < cols; c++) dx[c] = scale * (dx[c] / sum - y[c]);
  }
  return NULL;
}

/*
 * step(x) is chosen on x's bit pattern with integer compares: a float compare here would keep the
 * compiler from vectorising (it may not raise FP exceptions on lanes the scalar code skips), and the
 * scalar loop branches on the sign of every element.
 */
static void relu_grad_loop(const float *restrict dy, const float *restrict x, float *restrict dx, int64_t n) {
  const int32_t *xb = (const int32_t *)x;
  for (int64_t i = 0; i < n; i++) {
    int32_t b = xb[i];
    int32_t mag = b & 0x7fffffff;
    int32_t sb = mag > 0x7f800000 ? b : (b > 0 ? 0x3f800000 : 0); /* NaN stays NaN; x > 0 -> 1.0f; else 0 */
    float s;
    memcpy(&s, &sb, sizeof s);
    dx[i] = dy[i] * s;
  }
}

static napi_value relu_grad(napi_env env, napi_callback_info info) {
  const char *usage = "efftrain-blas: reluGrad expects (heap, dyOff, xOff, dxOff, n), non-negative integers";
  char *base = NULL;
  size_t len = 0;
  int64_t v[4];
  if (!read_heap_ints(env, info, 4, usage, &base, &len, v)) return NULL;
  int64_t n = v[3];
  if (!in_bounds(v[0], 0, 1, n, len) || !in_bounds(v[1], 0, 1, n, len) || !in_bounds(v[2], 0, 1, n, len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: reluGrad operand outside the heap");
    return NULL;
  }
  relu_grad_loop((const float *)(base + v[0]), (const float *)(base + v[1]), (float *)(base + v[2]), n);
  return NULL;
}

static void add_row_loop(const float *restrict x, const float *restrict b, float *restrict out, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++, x += cols, out += cols)
    for (int64_t c = 0; c < cols; c++) out[c] = x[c] + b[c];
}

static napi_value add_row(napi_env env, napi_callback_info info) {
  const char *usage = "efftrain-blas: addRow expects (heap, xOff, bOff, outOff, rows, cols), non-negative integers";
  char *base = NULL;
  size_t len = 0;
  int64_t v[5];
  if (!read_heap_ints(env, info, 5, usage, &base, &len, v)) return NULL;
  int64_t rows = v[3], cols = v[4];
  if (!in_bounds(v[0], 0, 1, rows * cols, len) || !in_bounds(v[1], 0, 1, cols, len) || !in_bounds(v[2], 0, 1, rows * cols, len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: addRow operand outside the heap");
    return NULL;
  }
  add_row_loop((const float *)(base + v[0]), (const float *)(base + v[1]), (float *)(base + v[2]), rows, cols);
  return NULL;
}


/* A row's mean and 1/√(biased variance + eps), in the order tfjs's moments computes them. */
static void ln_row_stats(const float *x, int64_t d, float eps, float *mu, float *rstd) {
  float s = 0, v = 0;
  for (int64_t c = 0; c < d; c++) s += x[c];
  float m = s / (float)d;
  for (int64_t c = 0; c < d; c++) {
    float t = x[c] - m;
    v += t * t;
  }
  *mu = m;
  *rstd = 1.0f / sqrtf(v / (float)d + eps);
}

static napi_value layer_norm(napi_env env, napi_callback_info info) {
  const char *usage = "efftrain-blas: layerNorm expects (heap, xOff, gOff, bOff, yOff, rows, d, eps)";
  char *base = NULL;
  size_t len = 0;
  int64_t v[6];
  double eps = 0;
  if (!read_heap_args(env, info, 6, usage, &base, &len, v, &eps)) return NULL;
  int64_t rows = v[4], d = v[5];
  if (d == 0 || !in_bounds(v[0], 0, 1, rows * d, len) || !in_bounds(v[1], 0, 1, d, len) || !in_bounds(v[2], 0, 1, d, len) ||
      !in_bounds(v[3], 0, 1, rows * d, len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: layerNorm operand outside the heap (or d = 0)");
    return NULL;
  }
  const float *x = (const float *)(base + v[0]), *g = (const float *)(base + v[1]), *b = (const float *)(base + v[2]);
  float *y = (float *)(base + v[3]);
  for (int64_t r = 0; r < rows; r++, x += d, y += d) {
    float mu, rstd;
    ln_row_stats(x, d, (float)eps, &mu, &rstd);
    for (int64_t c = 0; c < d; c++) y[c] = (x[c] - mu) * rstd * g[c] + b[c];
  }
  return NULL;
}

static napi_value layer_norm_grad(napi_env env, napi_callback_info info) {
  const char *usage = "efftrain-blas: layerNormGrad expects (heap, dyOff, xOff, gOff, dxOff, dgOff, dbOff, rows, d, eps)";
  char *base = NULL;
  size_t len = 0;
  int64_t v[8];
  double eps = 0;
  if (!read_heap_args(env, info, 8, usage, &base, &len, v, &eps)) return NULL;
  int64_t rows = v[6], d = v[7];
  if (d == 0 || !in_bounds(v[0], 0, 1, rows * d, len) || !in_bounds(v[1], 0, 1, rows * d, len) || !in_bounds(v[2], 0, 1, d, len) ||
      !in_bounds(v[3], 0, 1, rows * d, len) || !in_bounds(v[4], 0, 1, d, len) || !in_bounds(v[5], 0, 1, d, len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: layerNormGrad operand outside the heap (or d = 0)");
    return NULL;
  }
  const float *dy = (const float *)(base + v[0]), *x = (const float *)(base + v[1]), *g = (const float *)(base + v[2]);
  float *dx = (float *)(base + v[3]), *dg = (float *)(base + v[4]), *db = (float *)(base + v[5]);
  memset(dg, 0, (size_t)d * sizeof(float));
  memset(db, 0, (size_t)d * sizeof(float));
  for (int64_t r = 0; r < rows; r++, x += d, dy += d, dx += d) {
    float mu, rstd, mg = 0, mgx = 0;
    ln_row_stats(x, d, (float)eps, &mu, &rstd);
    for (int64_t c = 0; c < d; c++) {
      float xh = (x[c] - mu) * rstd, gh = dy[c] * g[c];
      mg += gh;
      mgx += gh * xh;
      dg[c] += dy[c] * xh;
      db[c] += dy[c];
    }
    mg /= (float)d;
    mgx /= (float)d;
    for (int64_t c = 0; c < d; c++) dx[c] = rstd * (dy[c] * g[c] - mg - (x[c] - mu) * rstd * mgx);
  }
  return NULL;
}

/*
 * exp(x) without a libm call, so loops over it vectorise: x = n·ln2 + r with n = round(x·log2 e) (the
 * 1.5·2^23 rounding trick), Cephes' degree-6 polynomial for exp(r) on |r| ≤ ln2/2, and 2^n put into the
 * exponent bits. x is clamped to ±87 first (the normal float range).
 */
static inline float poly_expf(float x) {
  /* |x| ≤ 87 by an integer select on the bits (float compares would stop vectorisation); a NaN becomes ±87,
     which callers here propagate through their own factor of x. */
  int32_t xb;
  memcpy(&xb, &x, sizeof xb);
  xb = (xb & 0x7fffffff) > 0x42ae0000 ? (xb & (int32_t)0x80000000) | 0x42ae0000 : xb;
  memcpy(&x, &xb, sizeof x);
  float fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = (x - fn * 0.693359375f) + fn * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float e = p * r * r + r + 1.0f;
  int32_t bits = ((int32_t)fn + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return e * scale;
}

#define GELU_C 1.5957691216057308f   /* 2·√(2/π) */
#define GELU_K 0.07135481627159396f  /* 0.044715·GELU_C */

static void gelu_loop(const float *restrict x, float *restrict y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float xi = x[i];
    float s = 1.0f / (1.0f + poly_expf(-(xi * (xi * xi * GELU_K + GELU_C))));
    y[i] = xi * s;
  }
}

static void gelu_grad_loop(const float *restrict dy, const float *restrict x, float *restrict dx,
                                                                       int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float xi = x[i], x2 = xi * xi;
    float s = 1.0f / (1.0f + poly_expf(-(xi * (x2 * GELU_K + GELU_C))));
    float yi = xi * s;
    dx[i] = dy[i] * (s + (yi - yi * s) * (x2 * (3.0f * GELU_K) + GELU_C));
  }
}

static napi_value gelu(napi_env env, napi_callback_info info) {
  const char *usage = "efftrain-blas: gelu expects (heap, xOff, yOff, n), non-negative integers";
  char *base = NULL;
  size_t len = 0;
  int64_t v[3];
  if (!read_heap_ints(env, info, 3, usage, &base, &len, v)) return NULL;
  if (!in_bounds(v[0], 0, 1, v[2], len) || !in_bounds(v[1], 0, 1, v[2], len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: gelu operand outside the heap");
    return NULL;
  }
  gelu_loop((const float *)(base + v[0]), (float *)(base + v[1]), v[2]);
  return NULL;
}

static napi_value gelu_grad(napi_env env, napi_callback_info info) {
  const char *usage = "efftrain-blas: geluGrad expects (heap, dyOff, xOff, dxOff, n), non-negative integers";
  char *base = NULL;
  size_t len = 0;
  int64_t v[4];
  if (!read_heap_ints(env, info, 4, usage, &base, &len, v)) return NULL;
  if (!in_bounds(v[0], 0, 1, v[3], len) || !in_bounds(v[1], 0, 1, v[3], len) || !in_bounds(v[2], 0, 1, v[3], len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: geluGrad operand outside the heap");
    return NULL;
  }
  gelu_grad_loop((const float *)(base + v[0]), (const float *)(base + v[1]), (float *)(base + v[2]), v[3]);
  return NULL;
}

/* Writes x broadcast over shape[d..rank) to out, sequentially; returns the advanced out pointer. */
static float *broadcast_rec(const float *x, float *out, const int64_t *shape, const int64_t *st, int rank, int d) {
  if (d == rank - 1) {
    if (st[d] == 0) {
      for (int64_t i = 0; i < shape[d]; i++) out[i] = x[0];
    } else {
      for (int64_t i = 0; i < shape[d]; i++) out[i] = x[i * st[d]];
    }
    return out + shape[d];
  }
  for (int64_t i = 0; i < shape[d]; i++) out = broadcast_rec(x + i * st[d], out, shape, st, rank, d + 1);
  return out;
}

static napi_value broadcast(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const char *usage = "efftrain-blas: broadcast expects (heap, xOff, outOff, shape: number[], strides: number[]) of one rank 1..8";
  if (argc != 5) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  char *base = NULL;
  size_t len = 0;
  int64_t xOff = 0, outOff = 0;
  uint32_t rank = 0, srank = 0;
  if (!read_heap(env, argv[0], &base, &len)) return NULL;
  if (!get_i64(env, argv[1], &xOff) || !get_i64(env, argv[2], &outOff) || napi_get_array_length(env, argv[3], &rank) != napi_ok ||
      napi_get_array_length(env, argv[4], &srank) != napi_ok || rank < 1 || rank > 8 || srank != rank) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  double shd[8], std_[8];
  if (!read_numbers(env, argv[3], rank, shd, usage) || !read_numbers(env, argv[4], rank, std_, usage)) return NULL;
  int64_t shape[8], st[8], outSize = 1, xLast = 0;
  for (uint32_t d = 0; d < rank; d++) {
    shape[d] = (int64_t)shd[d];
    st[d] = (int64_t)std_[d];
    if ((double)shape[d] != shd[d] || (double)st[d] != std_[d] || shape[d] < 0 || st[d] < 0 || shape[d] > INT32_MAX) {
      napi_throw_range_error(env, NULL, usage);
      return NULL;
    }
    outSize *= shape[d];
    if (shape[d] > 0) xLast += (shape[d] - 1) * st[d];
  }
  if (outSize == 0) return NULL;
  if (!in_bounds(xOff, 0, 1, xLast + 1, len) || !in_bounds(outOff, 0, 1, outSize, len)) {
    napi_throw_range_error(env, NULL, "efftrain-blas: broadcast operand outside the heap");
    return NULL;
  }
  broadcast_rec((const float *)(base + xOff), (float *)(base + outOff), shape, st, (int)rank, 0);
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t n = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || !get_i64(env, argv[0], &n) || n < 1 || n > 256) {
    napi_throw_range_error(env, NULL, "efftrain-blas: setThreads expects an integer in 1..256");
    return NULL;
  }
  default_threads = (int)n;
  return NULL;
}

static napi_value threads(napi_env env, napi_callback_info info) {
  napi_value out;
  (void)info;
  CHECK(napi_create_int32(env, default_threads, &out));
  return out;
}

static napi_value config(napi_env env, napi_callback_info info) {
  napi_value out;
  (void)info;
  CHECK(napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &out));
  return out;
}

/*
 * The contract version with src/engine/blas.ts (BLAS_ABI there): bump both when a function is added or
 * its arguments change, so an addon built from older sources is refused (and rebuilt) instead of failing
 * mid-run.
 */
#define EFFTRAIN_BLAS_ABI 3

static napi_value init(napi_env env, napi_value exports) {
  pthread_once(&blas_once, blas_init_once);
  napi_value abi;
  if (napi_create_int32(env, EFFTRAIN_BLAS_ABI, &abi) != napi_ok) return NULL;
  napi_property_descriptor props[] = {
      {"abi", NULL, NULL, NULL, NULL, abi, napi_enumerable, NULL},
      {"sgemm", NULL, sgemm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"threads", NULL, threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"config", NULL, config, NULL, NULL, NULL, napi_enumerable, NULL},
      {"im2col", NULL, im2col, NULL, NULL, NULL, napi_enumerable, NULL},
      {"col2im", NULL, col2im, NULL, NULL, NULL, napi_enumerable, NULL},
      {"maxPoolGrad", NULL, max_pool_grad, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adamw", NULL, adamw, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sumLeading", NULL, sum_leading, NULL, NULL, NULL, napi_enumerable, NULL},
      {"softmaxCE", NULL, softmax_ce, NULL, NULL, NULL, napi_enumerable, NULL},
      {"softmaxCEGrad", NULL, softmax_ce_grad, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reluGrad", NULL, relu_grad, NULL, NULL, NULL, napi_enumerable, NULL},
      {"addRow", NULL, add_row, NULL, NULL, NULL, napi_enumerable, NULL},
      {"broadcast", NULL, broadcast, NULL, NULL, NULL, napi_enumerable, NULL},
      {"layerNorm", NULL, layer_norm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gelu", NULL, gelu, NULL, NULL, NULL, napi_enumerable, NULL},
      {"geluGrad", NULL, gelu_grad, NULL, NULL, NULL, napi_enumerable, NULL},
      {"layerNormGrad", NULL, layer_norm_grad, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
