// The browser side of test/e2e/images.test.ts (served as /page.js behind index.html, so
// 'inception-wasm' is dist/index.js through the import map): the photo fixtures, served
// under /images/, through `preprocess` as bytes and as the browser's own image objects
// (<img>, ImageData, ImageBitmap). Values go back to Node, which compares them.
import { decodeImage, init, preprocess } from 'inception-wasm';

async function fixtureBytes(file) {
  const response = await fetch(`/images/${file}`);
  if (!response.ok) throw new Error(`/images/${file}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function fixtureBlob(file, type) {
  return new Blob([await fixtureBytes(file)], { type });
}

/** An <img> holding the file, decoded by the browser (an object URL of a Blob, as an app would). */
async function fixtureImg(file, type) {
  const url = URL.createObjectURL(await fixtureBlob(file, type));
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** What each way of handing the image over makes of the file. */
const sources = {
  bytes: (file) => fixtureBytes(file),
  img: (file, type) => fixtureImg(file, type),
  imagedata: async (file, type) => {
    const img = await fixtureImg(file, type);
    const canvas = document.createElement('canvas');
    [canvas.width, canvas.height] = [img.naturalWidth, img.naturalHeight];
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(img, 0, 0);
    return ctx.getImageData(0, 0, canvas.width, canvas.height);
  },
  bitmap: async (file, type) => createImageBitmap(await fixtureBlob(file, type)),
};

function errorInfo(e) {
  return { name: e?.name, reason: e?.reason, message: String(e?.message ?? e) };
}

/** `preprocess` of the fixture handed over as `via`: the tensor's shape and values, or the error. */
globalThis.preprocessFixture = async (file, type, via, options) => {
  const input = await sources[via](file, type);
  const t0 = performance.now();
  let x;
  try {
    x = await preprocess(input, options);
  } catch (e) {
    return { error: errorInfo(e) };
  } finally {
    input.close?.(); // an ImageBitmap
  }
  try {
    return { ms: performance.now() - t0, shape: x.shape, data: x.data.slice() };
  } finally {
    x.dispose();
  }
};

/** `preprocess` of an <img> with no image yet: the error. */
globalThis.preprocessUnloaded = async () => {
  const pending = new Image();
  pending.src = '/images/astronaut_png.png?pending'; // arrives in a later task than the call below
  const broken = new Image();
  broken.src = 'data:image/png;base64,AAAA';
  await broken.decode().catch(() => {});
  return Promise.all([new Image(), pending, broken].map((img) => preprocess(img).then(() => undefined, errorInfo)));
};

/** A PNG (the expected images) decoded by the package: exact for PNG. */
globalThis.decodeFixture = async (file) => decodeImage(await fixtureBytes(file));

await init();
document.getElementById('status').textContent = 'ready';
globalThis.pageReady = true;
