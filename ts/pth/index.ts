/**
 * PyTorch's own weight files, as `torch.save(model.state_dict(), path)` writes them:
 *
 * - the zip format (torch ≥ 1.6): `<name>/data.pkl`, the pickled state dict whose tensors
 *   name their storages by persistent id `('storage', type, key, location, numel)`, and
 *   one record `<name>/data/<key>` of raw little-endian bytes per storage;
 * - the legacy format (torch < 1.6, or `_use_new_zipfile_serialization=False`; torchvision's
 *   own GoogLeNet file is one): pickles of the magic number, the protocol version (1001)
 *   and `sys_info`, then the state dict (persistent ids with a sixth field, the view
 *   metadata of torch < 0.4), then the list of storage keys, then each storage's element
 *   count (u64) and bytes, in that order.
 *
 * The pickles run on a restricted machine (./pickle.ts) with a state dict's few globals
 * (./torch.ts): nothing in the file is executed, and every problem is a {@link PthError}.
 */
import type { StateTensor } from '../nn/module.js';
import { DataTypeError } from '../errors.js';
import { PthError } from './error.js';
import { describePy, isTuple, latin1, type PickleHooks, PyDict, unpickle } from './pickle.js';
import { materialise, Storage, storageId, TensorRef, torchHooks } from './torch.js';
import { extract, isZip, readZip } from './zip.js';

export { PthError };

/** `torch.serialization.MAGIC_NUMBER`, the first pickle of a legacy file. */
const MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
/** `torch.serialization.PROTOCOL_VERSION`: the only one torch has written. */
const PROTOCOL_VERSION = 1001;
/** Where training checkpoints keep the model's state dict, in the order they are looked for. */
const CHECKPOINT_KEYS = ['state_dict', 'model_state_dict', 'model'];

/**
 * Reads a PyTorch `.pth` / `.pt` file of a state dict (zip or legacy format, float32,
 * float16, bfloat16 or float64 tensors, any storage offsets, strides and sharing) into the
 * same `Map` as {@link loadSafetensors}: row-major float32 by state-dict key, ready for
 * `module.loadStateDict`. `*.num_batches_tracked` counters are dropped; the `module.`
 * prefix of `nn.DataParallel` is removed when every key has it. A training checkpoint
 * (a dict holding the state dict under `state_dict`, `model_state_dict` or `model`) gives
 * that state dict; the rest of it (epoch, optimizer state) is read but not kept.
 *
 * A pickled model (`torch.save(model)`), a pickle that names anything but a state dict's
 * globals (a command, a class), a truncated or corrupt file: a {@link PthError} naming what
 * was found, before anything is loaded. Nothing in the file is ever run.
 */
export function loadPth(bytes: Uint8Array | ArrayBuffer): Map<string, StateTensor> {
  const file = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  if (!(file instanceof Uint8Array)) throw new DataTypeError('loadPth', `expected a Uint8Array or ArrayBuffer, but got ${typeof bytes}`);
  const { root, storages } = isZip(file) ? readZipFormat(file) : file[0] === 0x80 || file[0] === 0x4c ? readLegacyFormat(file) : notPth(file);
  const dict = findStateDict(root);
  const entries: [string, TensorRef][] = [];
  for (const [key, value] of dict.map) {
    if (typeof key !== 'string') throw new PthError(`a state dict's keys are strings, but this one has ${describePy(key)}`);
    if (!(value instanceof TensorRef)) {
      const checkpoint = dict === root ? ` (a training checkpoint? loadPth looks for its state dict under ${CHECKPOINT_KEYS.map((k) => `"${k}"`).join(', ')})` : '';
      throw new PthError(`is ${describePy(value)}, not a tensor${checkpoint}`, key);
    }
    entries.push([key, value]);
  }
  const stripped = entries.length > 0 && entries.every(([k]) => k.startsWith('module.')) ? entries.map(([k, t]): [string, TensorRef] => [k.slice(7), t]) : entries;
  let elements = 0;
  for (const s of storages) elements += s.numel;
  return materialise(stripped, elements);
}

interface Contents {
  /** The unpickled object: a state dict, a checkpoint, or anything else (refused later). */
  root: unknown;
  /** Every storage the file holds (the pickle's, in the zip format). */
  storages: Iterable<Storage>;
}

function findStateDict(root: unknown): PyDict {
  if (root instanceof TensorRef) throw new PthError('the file holds a single tensor, not a state dict');
  if (!(root instanceof PyDict)) throw new PthError(`the file holds ${describePy(root)}, not a state dict (a dict of tensors)`);
  for (const key of CHECKPOINT_KEYS) {
    const inner = root.map.get(key);
    if (inner instanceof PyDict) return inner;
  }
  return root;
}

function readZipFormat(file: Uint8Array): Contents {
  const entries = readZip(file);
  const pickles = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pickles.length !== 1) {
    const names = [...entries.keys()];
    const listed = `${names.slice(0, 6).join(', ')}${names.length > 6 ? ', …' : ''}`;
    throw new PthError(pickles.length === 0
      ? `a zip archive without <folder>/data.pkl, so not one torch.save wrote (it holds ${names.length} entries: ${listed})`
      : `a zip archive with ${pickles.length} data.pkl files (${pickles.join(', ')}): torch.save writes one`);
  }
  const folder = pickles[0]!.slice(0, -'data.pkl'.length);
  const byteorder = entries.get(`${folder}byteorder`);
  if (byteorder !== undefined) {
    const order = latin1(extract(file, byteorder));
    if (order !== 'little') throw new PthError(`the file's byte order is "${order.slice(0, 20)}"; only little-endian files are read`);
  }
  const storages = new Map<string, Storage>();
  const persistentLoad = (pid: unknown): Storage => {
    const { type, key, numel } = storageId(pid, 5);
    const known = storages.get(key);
    if (known) return sameStorage(known, type.dtype, numel);
    const name = `${folder}data/${key}`;
    const entry = entries.get(name);
    if (entry === undefined) throw new PthError(`storage "${key}" has no record ${name} in the archive`);
    if (entry.size !== numel * type.itemSize) {
      throw new PthError(`storage "${key}": ${numel} ${type.dtype} values need ${numel * type.itemSize} bytes, but ${name} holds ${entry.size}`);
    }
    const storage = new Storage(key, type, numel, () => extract(file, entry));
    storages.set(key, storage);
    return storage;
  };
  const { value } = unpickle(extract(file, entries.get(pickles[0]!)!), 0, torchHooks(persistentLoad));
  return { root: value, storages: storages.values() };
}

function readLegacyFormat(file: Uint8Array): Contents {
  const noStorages = torchHooks(() => {
    throw new PthError('a storage reference outside the state dict pickle');
  });
  const next = (start: number, hooks: PickleHooks = noStorages) => unpickle(file, start, hooks);
  const magic = next(0);
  if (magic.value !== MAGIC_NUMBER) throw new PthError(`a pickle, but not a torch.save file: it holds ${describePy(magic.value)}, not torch's magic number`);
  const protocol = next(magic.end);
  if (protocol.value !== PROTOCOL_VERSION) throw new PthError(`legacy format protocol version ${describePy(protocol.value)}, expected ${PROTOCOL_VERSION}`);
  const sysInfo = next(protocol.end);
  if (!(sysInfo.value instanceof PyDict) || sysInfo.value.map.get('little_endian') !== true) {
    throw new PthError(`sys_info (${describePy(sysInfo.value)}) does not say little_endian: only little-endian files are read`);
  }

  const roots = new Map<string, Storage>();
  const views = new Map<string, Storage>();
  const data = new Map<string, Uint8Array>();
  const persistentLoad = (pid: unknown): Storage => {
    const { type, key, numel, rest } = storageId(pid, 6);
    let root = roots.get(key);
    if (root) sameStorage(root, type.dtype, numel);
    else {
      root = new Storage(key, type, numel, () => {
        const bytes = data.get(key);
        if (bytes === undefined) throw new PthError(`storage "${key}" has no data in the file (truncated?)`);
        return bytes;
      });
      roots.set(key, root);
    }
    const view = rest[0];
    if (view === null) return root;
    // torch < 0.4 pickled views of storages: (view_key, offset, view_size) of the root.
    if (!isTuple(view) || view.length !== 3 || typeof view[0] !== 'string' || !isIndex(view[1]) || !isIndex(view[2])) {
      throw new PthError(`storage "${key}": view metadata must be (key, offset, size), but got ${describePy(view)}`);
    }
    const [viewKey, offset, size] = view as [string, number, number];
    if (offset + size > numel) throw new PthError(`storage view "${viewKey}" [${offset}, ${offset + size}) lies outside storage "${key}" of ${numel}`);
    const known = views.get(viewKey);
    if (known) return sameStorage(known, type.dtype, size);
    const r = root;
    const storage = new Storage(viewKey, type, size, () => r.bytes.subarray(offset * type.itemSize, (offset + size) * type.itemSize));
    views.set(viewKey, storage);
    return storage;
  };
  const state = next(sysInfo.end, torchHooks(persistentLoad));
  const keys = next(state.end);
  const list = keys.value;
  if (!Array.isArray(list) || isTuple(list) || !(list as unknown[]).every((k) => typeof k === 'string')) {
    throw new PthError(`the storage key list is ${describePy(keys.value)}, not a list of strings`);
  }

  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let p = keys.end;
  for (const key of list as string[]) {
    const storage = roots.get(key);
    if (storage === undefined) throw new PthError(`the file has data for storage "${key}", which no tensor uses`);
    if (data.has(key)) throw new PthError(`the file has data for storage "${key}" twice`);
    if (p + 8 > file.length) throw new PthError(`the data of storage "${key}" is missing: the file ends at byte ${file.length} (truncated?)`);
    const count = view.getBigUint64(p, true);
    if (count !== BigInt(storage.numel)) throw new PthError(`storage "${key}" has ${count} values in the data, but ${storage.numel} in the pickle`);
    const n = storage.numel * storage.type.itemSize;
    if (p + 8 + n > file.length) throw new PthError(`storage "${key}" needs ${n} bytes at byte ${p + 8}, but the file ends at byte ${file.length} (truncated?)`);
    data.set(key, file.subarray(p + 8, p + 8 + n));
    p += 8 + n;
  }
  return { root: state.value, storages: roots.values() };
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Two references to one storage key must agree on its dtype and size. */
function sameStorage(s: Storage, dtype: string, numel: number): Storage {
  if (s.type.dtype !== dtype || s.numel !== numel) {
    throw new PthError(`storage "${s.key}" is referenced as ${s.numel} ${s.type.dtype} values and as ${numel} ${dtype} values`);
  }
  return s;
}

/** Names what a file that is neither a zip archive nor a pickle is, when it can tell. */
function notPth(file: Uint8Array): never {
  const starts = (...b: number[]) => b.every((v, i) => file[i] === v);
  let what: string;
  if (file.length === 0) what = 'the file is empty';
  else if (starts(0xff, 0xd8, 0xff)) what = 'it is a JPEG image';
  else if (starts(0x89, 0x50, 0x4e, 0x47)) what = 'it is a PNG image';
  else if (starts(0x1f, 0x8b)) what = 'it is gzip-compressed: decompress it first';
  else if (file.length > 8 && file[8] === 0x7b && new DataView(file.buffer, file.byteOffset).getBigUint64(0, true) < BigInt(file.length)) {
    what = 'it is a safetensors file: read it with loadSafetensors';
  } else if (file.length > 262 && latin1(file.subarray(257, 262)) === 'ustar') {
    what = 'it is a tar archive, the format of torch < 0.1.10: load and re-save it with a newer torch';
  } else what = `it starts with ${[...file.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`;
  throw new PthError(`not a PyTorch file (${what}); torch.save writes a zip archive (torch ≥ 1.6) or a pickle stream (legacy format)`);
}
