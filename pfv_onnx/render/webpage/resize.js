// Bit-exact port of Pillow's Image.resize((W, H), Image.Resampling.BILINEAR, box=...) for 8-bit
// RGB images (src/libImaging/Resample.c and _resize_impl in src/_imaging.c of Pillow 13.0.0), plus
// the fit_image() of pfv_onnx/preprocess.py, so that the page feeds the model exactly the pixels the
// Python side does. Pillow 12 and older always ran the horizontal pass first (see horizontalFirst),
// so with them some pixels differ by 1.
// Classic script: defines globalThis.pfvResample and globalThis.pfvFitImage.
(function () {
  "use strict";

  // Fixed-point precision of the 8-bit coefficients: 8 bits for the result, 2 for overflow.
  const PRECISION_BITS = 32 - 8 - 2;
  const ONE = 1 << PRECISION_BITS;
  const HALF = 1 << (PRECISION_BITS - 1);
  const CROP_FRACTION = 0.875;

  function bilinear(x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
  }

  // Pillow's clip8. Every sum stays well inside int32 (bilinear weights are non-negative and sum
  // to ~ONE, so at most ~255 * 2^22), so `>>` is C's arithmetic shift here.
  function clip8(ss) {
    const v = ss >> PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : v;
  }

  // precompute_coeffs() followed by normalize_coeffs_8bpc(), for one axis.
  // in0 and in1 are float32 values (Pillow's box is float[4]).
  function coeffs(inSize, in0, in1, outSize) {
    // C subtracts the two floats in single precision before widening to double.
    const scale = Math.fround(in1 - in0) / outSize;
    // When downscaling the filter is widened by the scale factor (antialiasing).
    const filterscale = scale < 1 ? 1 : scale;
    const support = 1.0 * filterscale; // bilinear support is 1.0
    const ksize = Math.ceil(support) * 2 + 1;
    const inv = 1.0 / filterscale;
    const bounds = new Int32Array(outSize * 2);
    const kk = new Int32Array(outSize * ksize);
    const w = new Float64Array(ksize);
    for (let xx = 0; xx < outSize; xx++) {
      const center = in0 + (xx + 0.5) * scale;
      // (int) casts in C truncate toward zero.
      let xmin = Math.trunc(center - support + 0.5);
      if (xmin < 0) xmin = 0;
      let xmax = Math.trunc(center + support + 0.5);
      if (xmax > inSize) xmax = inSize;
      xmax -= xmin;
      let ww = 0;
      for (let x = 0; x < xmax; x++) {
        w[x] = bilinear((x + xmin - center + 0.5) * inv);
        ww += w[x];
      }
      for (let x = 0; x < xmax; x++) {
        const k = ww !== 0 ? w[x] / ww : w[x];
        // Round half away from zero, then truncate, as normalize_coeffs_8bpc does.
        kk[xx * ksize + x] = Math.trunc(k < 0 ? k * ONE - 0.5 : k * ONE + 0.5);
      }
      bounds[xx * 2] = xmin;
      bounds[xx * 2 + 1] = xmax;
    }
    return { ksize, bounds, kk };
  }

  // One output pixel: the fixed-point weighted sum of `count` source pixels, the first at byte `start` and
  // the next `stride` bytes apart (along a row, or down a column), with the weights kk[k0 ...].
  function accumulate(src, start, stride, count, kk, k0, out, o) {
    let ss0 = HALF, ss1 = HALF, ss2 = HALF; // the +0.5 of rounding, in fixed point
    for (let i = 0; i < count; i++) {
      const p = start + i * stride, k = kk[k0 + i];
      ss0 += src[p] * k;
      ss1 += src[p + 1] * k;
      ss2 += src[p + 2] * k;
    }
    out[o] = clip8(ss0);
    out[o + 1] = clip8(ss1);
    out[o + 2] = clip8(ss2);
  }

  // ImagingResampleHorizontal_8bpc: `rows` rows of src starting at row `offset`, to RGB.
  // bpp is 4 for the caller's RGBA input, 3 for our own RGB buffers.
  function horizontal(src, bpp, srcW, offset, rows, outW, c) {
    const out = new Uint8ClampedArray(outW * rows * 3);
    for (let yy = 0; yy < rows; yy++) {
      const line = (yy + offset) * srcW * bpp;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1];
        accumulate(src, line + xmin * bpp, bpp, xmax, c.kk, xx * c.ksize, out, (yy * outW + xx) * 3);
      }
    }
    return out;
  }

  // ImagingResampleVertical_8bpc: all columns of a w-wide image, to RGB.
  function vertical(src, bpp, w, outH, c) {
    const out = new Uint8ClampedArray(w * outH * 3);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = c.bounds[yy * 2], ymax = c.bounds[yy * 2 + 1];
      for (let xx = 0; xx < w; xx++) {
        accumulate(src, (ymin * w + xx) * bpp, w * bpp, ymax, c.kk, yy * c.ksize, out, (yy * w + xx) * 3);
      }
    }
    return out;
  }

  // RGB copy of a w x h window of the RGBA source (ImagingCrop / ImagingCopy).
  function crop(rgba, srcW, x0, y0, w, h) {
    const out = new Uint8ClampedArray(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = ((y + y0) * srcW + x + x0) * 4, o = (y * w + x) * 3;
        out[o] = rgba[p];
        out[o + 1] = rgba[p + 1];
        out[o + 2] = rgba[p + 2];
      }
    }
    return out;
  }

  function pfvResample(rgba, srcW, srcH, box, outW, outH) {
    // Python passes the box to C through PyArg_ParseTuple "(ffff)": float32.
    const [x0, y0, x1, y1] = (box || [0, 0, srcW, srcH]).map((v) => Math.fround(v));
    if (outW < 1 || outH < 1) throw new RangeError("height and width must be > 0");
    if (x0 < 0 || y0 < 0) throw new RangeError("box offset can't be negative");
    if (x1 > srcW || y1 > srcH) throw new RangeError("box can't exceed original image size");
    if (x1 - x0 < 0 || y1 - y0 < 0) throw new RangeError("box can't be empty");

    // _resize_impl(): an integer-aligned box of exactly the output size is a plain crop, no filtering
    // (this also covers Python's copy() when size and box are the whole image).
    if (Number.isInteger(x0) && Math.fround(x1 - x0) === outW &&
        Number.isInteger(y0) && Math.fround(y1 - y0) === outH) {
      return crop(rgba, srcW, x0, y0, outW, outH);
    }

    // ImagingResampleInner(). Note Pillow compares box[2] / box[3] with the *output* size.
    const needH = outW !== srcW || x0 !== 0 || x1 !== outW;
    const needV = outH !== srcH || y0 !== 0 || y1 !== outH;
    if (!needH && !needV) return crop(rgba, srcW, 0, 0, srcW, srcH);
    // The 8-bit intermediate image is rounded, so the pass order changes the result. Pillow >= 13
    // runs the vertical pass first when the height shrinks by more than twice the width does.
    const horizontalFirst = !(srcH - outH > 0 && srcH - outH > (srcW - outW) * 2);
    const vc = coeffs(srcH, y0, y1, outH);
    if (!needH) return vertical(rgba, 4, srcW, outH, vc);
    const hc = coeffs(srcW, x0, x1, outW);
    if (!horizontalFirst) {
      // Only reached when the height changes, so both passes run.
      return horizontal(vertical(rgba, 4, srcW, outH, vc), 3, srcW, 0, outH, outW, hc);
    }
    // The horizontal pass only computes the source rows the vertical pass reads.
    const yFirst = vc.bounds[0];
    const yLast = vc.bounds[outH * 2 - 2] + vc.bounds[outH * 2 - 1];
    for (let i = 0; i < outH; i++) vc.bounds[i * 2] -= yFirst;
    const tmp = horizontal(rgba, 4, srcW, yFirst, yLast - yFirst, outW, hc);
    return needV ? vertical(tmp, 3, outW, outH, vc) : tmp;
  }

  // Python's round() on a float: half to even.
  function pyRound(x) {
    const f = Math.floor(x), d = x - f;
    if (d !== 0.5) return d < 0.5 ? f : f + 1;
    return f % 2 === 0 ? f : f + 1;
  }

  // fit_image(image, (H, W), mode) of pfv_onnx/preprocess.py; any mode but "stretch" crops.
  function pfvFitImage(rgba, srcW, srcH, H, W, mode) {
    if (mode === "stretch") return pfvResample(rgba, srcW, srcH, null, W, H);
    // Same double operations, in the same order, as the Python code.
    const scale = Math.max(H, W) / CROP_FRACTION / Math.min(srcW, srcH);
    const scaledW = Math.max(W, pyRound(srcW * scale));
    const scaledH = Math.max(H, pyRound(srcH * scale));
    const left = Math.floor((scaledW - W) / 2), top = Math.floor((scaledH - H) / 2);
    const sx = srcW / scaledW, sy = srcH / scaledH;
    const box = [left * sx, top * sy, (left + W) * sx, (top + H) * sy];
    return pfvResample(rgba, srcW, srcH, box, W, H);
  }

  globalThis.pfvResample = pfvResample;
  globalThis.pfvFitImage = pfvFitImage;
})();
