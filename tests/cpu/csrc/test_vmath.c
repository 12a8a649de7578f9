/* Checks karena/vmath.h against libm (double precision, then the float error in ulp) on a sweep
   of the float line plus edge values: +-0, +-inf, nan, subnormals, huge, the overflow/underflow
   thresholds. Prints one line per function: "name max_ulp worst_x fails" and exits 1 on a failure.
   Built once per ISA path by tests/cpu/test_vmath.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "karena/vmath.h"

static float from_bits(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }

/* error of got against the exact value ref, in units of the float spacing at ref */
static double ulp_err(float got, double ref) {
  if (isnan(ref)) return isnan(got) ? 0.0 : INFINITY;
  if (isnan(got)) return INFINITY;
  if (isinf(ref) || isinf(got)) {
    if (got == (float)ref) return 0.0;
    if (isinf(got) && fabs(ref) > 3.4028234e38) return 0.0; /* rounds to inf */
    return INFINITY;
  }
  double a = fabs(ref);
  int e;
  frexp(a < 1.1754943508222875e-38 ? 1.1754943508222875e-38 : a, &e);
  double ulp = ldexp(1.0, e - 24);
  return fabs((double)got - ref) / ulp;
}

typedef struct { const char* name; double max_ulp; double abs_tol; } spec;

static int n_inputs;
static float* inputs;

static void add(float x) { inputs[n_inputs++] = x; }

static int check(const spec* s, kv_f (*vf)(kv_f), float (*sf)(float), double (*ref)(double)) {
  double worst = 0.0; float worst_x = 0.0f; long fails = 0;
  for (int i = 0; i < n_inputs; i += KV_VW) {
    float in[KV_VW], out[KV_VW];
    for (int j = 0; j < KV_VW; ++j) in[j] = inputs[i + j < n_inputs ? i + j : i];
    kv_store(out, vf(kv_load(in)));
    for (int j = 0; j < KV_VW && i + j < n_inputs; ++j) {
      float x = in[j];
      double r = ref((double)x);
      double e = ulp_err(out[j], r);
      int ok = e <= s->max_ulp || (isfinite(r) && fabs((double)out[j] - r) <= s->abs_tol);
      float so = sf(x); /* scalar twin: same result as the vector lane */
      int twin_ok = (isnan(so) && isnan(out[j])) || memcmp(&so, &out[j], 4) == 0;
      if (!ok || !twin_ok) {
        if (fails < 5) fprintf(stderr, "%s(%a=%g): got %a ref %a (%g ulp) scalar %a\n", s->name, x, x,
                               out[j], r, e, so);
        ++fails;
      }
      if (e > worst && isfinite(e) && fabs(r) >= 1e-6) { worst = e; worst_x = x; }
    }
  }
  printf("%s %s max_ulp=%.3f at %g fails=%ld\n", KV_ISA, s->name, worst, worst_x, fails);
  return fails != 0;
}

static double ref_exp(double x) { return exp(x); }
static double ref_log(double x) { return log(x); }
static double ref_tanh(double x) { return tanh(x); }
static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static int check_reductions(void) {
  int bad = 0;
  float v[KV_VW];
  for (int t = 0; t < 1000; ++t) {
    double s = 0.0; float m = -INFINITY;
    for (int i = 0; i < KV_VW; ++i) {
      v[i] = (float)((rand() / (double)RAND_MAX - 0.5) * 1000.0);
      s += v[i];
      m = v[i] > m ? v[i] : m;
    }
    kv_f x = kv_load(v);
    if (fabs(kv_hsum(x) - s) > 1e-4 * (1.0 + fabs(s)) * KV_VW) bad = 1;
    if (kv_hmax(x) != m) bad = 1;
  }
  /* partial load/store: lanes past n keep the fill / are not written */
  float src[KV_VW], dst[KV_VW + 1];
  for (int i = 0; i < KV_VW; ++i) src[i] = (float)i + 1.0f;
  for (int n = 0; n < KV_VW; ++n) {
    kv_f p = kv_load_part(src, n, -7.0f);
    for (int i = 0; i < KV_VW; ++i) if (p[i] != (i < n ? src[i] : -7.0f)) bad = 1;
    for (int i = 0; i <= KV_VW; ++i) dst[i] = 99.0f;
    kv_store_part(dst, p, n);
    for (int i = 0; i <= KV_VW; ++i) if (dst[i] != (i < n ? src[i] : 99.0f)) bad = 1;
  }
  /* reciprocal and streaming copy */
  for (int t = 0; t < 1000; ++t) {
    float d = (float)(rand() / (double)RAND_MAX * 1e6 + 1e-6) * (t & 1 ? -1.0f : 1.0f);
    float r = kv_rcp(kv_set1(d))[0];
    if (ulp_err(r, 1.0 / (double)d) > 2.0) { fprintf(stderr, "rcp(%g)=%g\n", d, r); bad = 1; }
  }
  static float a[1000], b[1003];
  for (int i = 0; i < 1000; ++i) a[i] = (float)i;
  for (int off = 0; off < 3; ++off) {
    b[off + 999 + 1] = -1.0f;
    kv_stream_copy(b + off, a, 999);
    kv_sfence();
    for (int i = 0; i < 999; ++i) if (b[off + i] != a[i]) bad = 1;
    if (b[off + 1000] != -1.0f) bad = 1;
  }
  printf("%s reductions/loads/rcp/stream %s\n", KV_ISA, bad ? "FAIL" : "ok");
  return bad;
}

int main(void) {
  inputs = malloc(sizeof(float) * 5000000);
  /* every 1024th bit pattern: all binades, both signs, subnormals, inf and nan */
  for (uint64_t b = 0; b < 0x100000000ull; b += 1021) add(from_bits((uint32_t)b));
  const float edges[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f, -1e-45f, 1.17549435e-38f,
                         1e-38f, 3.4028235e38f, -3.4028235e38f, 88.0f, 88.72f, 88.7228394f, 88.73f,
                         89.0f, -87.0f, -87.33f, -87.34f, -100.0f, -103.97f, -103.98f, -104.0f,
                         -150.0f, 0.625f, -0.625f, 0.6249f, 1.0f, -1.0f, 0.5f, 2.0f, 9.0f, -9.0f,
                         0.70710677f, 0.7071068f, 1.4142135f, 1e-8f, -1e-8f};
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; ++i) add(edges[i]);
  /* dense around the interesting region */
  for (int i = -200000; i <= 200000; ++i) add((float)i * 6e-4f);
  const spec sx = {"exp", 3.0, 0.0}, sl = {"log", 3.0, 0.0}, st = {"tanh", 4.0, 1e-7},
             ss = {"sigmoid", 4.0, 1e-7};
  int bad = 0;
  bad |= check(&sx, kv_exp, kv_exp_s, ref_exp);
  bad |= check(&sl, kv_log, kv_log_s, ref_log);
  bad |= check(&st, kv_tanh, kv_tanh_s, ref_tanh);
  bad |= check(&ss, kv_sigmoid, kv_sigmoid_s, ref_sigmoid);
  /* exp_fast: only its documented range */
  int n_all = n_inputs; float* all = inputs;
  inputs = malloc(sizeof(float) * 400001); n_inputs = 0;
  for (int i = -200000; i <= 200000; ++i) add((float)i * 4.35e-4f);
  const spec sf = {"exp_fast", 2.0, 0.0};
  bad |= check(&sf, kv_exp_fast, kv_exp_fast_s, ref_exp);
  free(inputs); inputs = all; n_inputs = n_all;
  bad |= check_reductions();
  return bad;
}
