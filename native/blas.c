/*
 * efftrain-blas: single-precision GEMM from OpenBLAS for the wasm backend, over the wasm heap.
 *
 * The wasm backend keeps every tensor in one ArrayBuffer (the emscripten heap). JavaScript passes
 * that buffer and byte offsets, so GEMM reads and writes tensors in place: no copies in or out.
 *
 *   sgemm(heap, transA, transB, M, N, K, aOff, bOff, cOff, batch, aStride, bStride, cStride, beta)
 *     for i in 0..batch: C_i = op(A_i) · op(B_i) + beta · C_i   (row-major, op = transpose or not)
 *     where X_i starts at xOff + i·xStride bytes; a stride of 0 shares one matrix across the batch.
 *   setThreads(n), threads(), config()
 */
#include <node_api.h>
#include <cblas.h>
#include <stdint.h>
#include <string.h>

#define CHECK(call)                                                                                 \
  do {                                                                                              \
    if ((call) != napi_ok) {                                                                        \
      napi_throw_error(env, NULL, "efftrain-blas: Node-API call failed: " #call);                   \
      return NULL;                                                                                  \
    }                                                                                               \
  } while (0)

static int get_i64(napi_env env, napi_value v, int64_t *out) { return napi_get_value_int64(env, v, out) == napi_ok; }

/* True when [off, off + (batch-1)·stride + floats·4) lies inside a buffer of `len` bytes. */
static int in_bounds(int64_t off, int64_t stride, int64_t batch, int64_t floats, size_t len) {
  if (off < 0 || stride < 0 || off % 4 != 0 || stride % 4 != 0) return 0;
  int64_t end = off + (batch - 1) * stride + floats * 4;
  return end >= off && (uint64_t)end <= (uint64_t)len;
}

static napi_value sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 14;
  napi_value argv[14];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 14) {
    napi_throw_type_error(env, NULL, "efftrain-blas: sgemm expects 14 arguments");
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
  openblas_set_num_threads((int)n);
  return NULL;
}

static napi_value threads(napi_env env, napi_callback_info info) {
  napi_value out;
  (void)info;
  CHECK(napi_create_int32(env, openblas_get_num_threads(), &out));
  return out;
}

static napi_value config(napi_env env, napi_callback_info info) {
  napi_value out;
  (void)info;
  CHECK(napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sgemm", NULL, sgemm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"threads", NULL, threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"config", NULL, config, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
