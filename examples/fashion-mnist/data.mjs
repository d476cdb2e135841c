// Fashion-MNIST from Debian's `dataset-fashion-mnist` (idx files, gzip): 60,000 training
// and 10,000 test images of 28×28 gray pixels, labels 0–9.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

export const DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';
export const CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
/** Mean and standard deviation of the training pixels (in [0, 1]). */
export const MEAN = 0.2860;
export const STD = 0.3530;

/** One idx file: its dimensions and bytes (idx: magic 0x0000 08 ndim, then big-endian u32 sizes). */
function readIdx(file) {
  const bytes = gunzipSync(readFileSync(file));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  if (magic >>> 8 !== 0x08) throw new Error(`${file}: not an idx file of unsigned bytes (magic ${magic.toString(16)})`);
  const ndim = magic & 0xff;
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i));
  const data = bytes.subarray(4 + 4 * ndim);
  if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`${file}: ${data.length} bytes for dimensions ${dims.join('×')}`);
  return { dims, data };
}

/** `{ images, labels, n, size }` of the `train` or `t10k` split. */
function split(dir, name) {
  const images = readIdx(path.join(dir, `${name}-images-idx3-ubyte.gz`));
  const labels = readIdx(path.join(dir, `${name}-labels-idx1-ubyte.gz`));
  const [n, rows, cols] = images.dims;
  if (labels.dims[0] !== n || rows !== cols) throw new Error(`${dir}: ${name} images and labels do not match`);
  return { images: images.data, labels: labels.data, n, size: rows };
}

export function loadFashionMnist(dir = DEFAULT_DIR) {
  if (!existsSync(path.join(dir, 'train-images-idx3-ubyte.gz'))) {
    throw new Error(`Fashion-MNIST not found in ${dir}: install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), or pass --data DIR`);
  }
  return { train: split(dir, 'train'), test: split(dir, 't10k') };
}

/**
 * Images `indices` of `split` as one `[n, 1, size + 2·pad, …]` float batch: pixels scaled to
 * [0, 1], normalised with the training mean and deviation, the border (the images' black
 * background) padded with the same normalised black.
 */
export function batchOf(split, indices, pad = 2) {
  const { images, size } = split;
  const out = size + 2 * pad;
  const data = new Float32Array(indices.length * out * out).fill((0 - MEAN) / STD);
  indices.forEach((idx, b) => {
    const src = idx * size * size;
    for (let y = 0; y < size; y++) {
      const row = (b * out + y + pad) * out + pad;
      for (let x = 0; x < size; x++) data[row + x] = (images[src + y * size + x] / 255 - MEAN) / STD;
    }
  });
  return { data, shape: [indices.length, 1, out, out], labels: indices.map((i) => split.labels[i]) };
}
