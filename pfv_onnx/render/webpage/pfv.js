// The page's work: load onnxruntime-web and the model (both inlined by pfv-onnx web, so the page works
// from file:// with nothing fetched), prepare each photo as pfv_onnx.preprocess does, run the model and
// draw its PFV picture. Runs as a module script (top-level await); globals come from the classic scripts
// written beside it: PFV_CONFIG, PFV_ORT_SOURCE, PFV_ORT_WASM, PFV_MODEL, PFV_SAMPLES, pfvFitImage.
const config = window.PFV_CONFIG;
const status = document.getElementById("status");
const results = document.getElementById("results");

function bytesOf(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function base64Of(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

// A module from a blob: a page opened from file:// may not import modules from files.
const ort = await import(URL.createObjectURL(new Blob([window.PFV_ORT_SOURCE], { type: "text/javascript" })));
ort.env.wasm.wasmBinary = bytesOf(window.PFV_ORT_WASM).buffer;
// Threads need a cross-origin-isolated page (SharedArrayBuffer), which a file:// page is not.
ort.env.wasm.numThreads = 1;
const session = await ort.InferenceSession.create(bytesOf(window.PFV_MODEL), { executionProviders: ["wasm"] });
const [height, width] = config.size;

// The photo's RGB pixels composited over the background colour, at its own size: Uint8ClampedArray RGBA.
async function pixelsOf(blob) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d");
  context.fillStyle = config.background;
  context.fillRect(0, 0, bitmap.width, bitmap.height);
  context.drawImage(bitmap, 0, 0);
  return { rgba: context.getImageData(0, 0, bitmap.width, bitmap.height).data, w: bitmap.width, h: bitmap.height };
}

// (pixel - mean) / std per channel, channels reversed for BGR presets, in the model's layout; a fixed batch
// is filled with copies of the image.
function modelInput(rgb) {
  const { mean, std, bgr } = config.preset;
  const plane = height * width;
  const x = new Float32Array(config.batch * plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const source = bgr ? 2 - c : c;
      const value = (rgb[p * 3 + source] - mean[source]) / std[source];
      x[config.layout === "NCHW" ? c * plane + p : p * 3 + c] = value;
    }
  }
  for (let b = 1; b < config.batch; b++) x.copyWithin(b * plane * 3, 0, plane * 3);
  const shape = config.layout === "NCHW" ? [config.batch, 3, height, width] : [config.batch, height, width, 3];
  return new ort.Tensor("float32", x, shape);
}

// The picture of the first image as RGB bytes, rounded as pfv_onnx.render.images.to_uint8 rounds.
function pictureBytes(tensor) {
  const plane = height * width;
  const rgb = new Uint8Array(plane * 3);
  if (config.picture.layout === "NHWC") {
    rgb.set(tensor.data.subarray(0, plane * 3));
    return rgb;
  }
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) rgb[p * 3 + c] = Math.floor(Math.min(Math.max(tensor.data[c * plane + p], 0), 1) * 255 + 0.5);
  }
  return rgb;
}

function canvasOf(rgb) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let p = 0; p < width * height; p++) {
    image.data.set(rgb.subarray(p * 3, p * 3 + 3), p * 4);
    image.data[p * 4 + 3] = 255;
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

function topClass(outputs) {
  if (!config.logits || !config.labels) return "";
  const scores = outputs[config.logits].data.subarray(0, config.labels.length);
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  let total = 0;
  for (const s of scores) total += Math.exp(s - scores[best]);
  return `${config.labels[best]} (${(100 / total).toFixed(1)}%)`;
}

async function show(name, blob) {
  const photo = await pixelsOf(blob);
  const crop = pfvFitImage(photo.rgba, photo.w, photo.h, height, width, config.resize);
  const wanted = [config.picture.name, ...(config.logits ? [config.logits] : [])];
  const outputs = await session.run({ [config.input]: modelInput(crop) }, wanted);
  const picture = pictureBytes(outputs[config.picture.name]);
  const figure = document.createElement("figure");
  figure.dataset.name = name;
  // What the page fed the model and what it drew, for comparison with the Python side.
  figure.dataset.input = base64Of(crop);
  figure.dataset.picture = base64Of(picture);
  figure.append(canvasOf(crop), canvasOf(picture));
  const caption = document.createElement("figcaption");
  const top = topClass(outputs);
  caption.textContent = top ? `${name}: ${top}` : name;
  figure.append(caption);
  results.prepend(figure);
}

async function showAll(items) {
  let done = 0;
  for (const [name, blob] of items) {
    status.textContent = `running ${name}`;
    try {
      await show(name, blob);
      done++;
    } catch (error) {
      status.textContent = `${name}: ${error}`;
      status.className = "error";
      return;
    }
  }
  status.className = "";
  status.textContent = `done: ${done} photo${done === 1 ? "" : "s"}; drop more, or choose them below`;
}

// One photo at a time: a session runs one call at a time, and photos dropped meanwhile wait their turn.
let queue = Promise.resolve();
function enqueue(items) {
  queue = queue.then(() => showAll(items));
}

document.getElementById("photos").addEventListener("change", (event) => enqueue([...event.target.files].map((f) => [f.name, f])));
document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => {
  event.preventDefault();
  enqueue([...event.dataTransfer.files].filter((f) => f.type.startsWith("image/")).map((f) => [f.name, f]));
});
enqueue((window.PFV_SAMPLES || []).map((s) => [s.name, new Blob([bytesOf(s.data)], { type: s.type })]));
