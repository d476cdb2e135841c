/**
 * What a state dict's pickle may name, and what it means: the allow-list of globals
 * (`collections.OrderedDict`, torch's tensor and parameter rebuild functions,
 * `torch.Size` and the storage types), the tensors they rebuild (references into storages,
 * nothing read yet), and their materialisation as row-major float32.
 *
 * The list is PyTorch's own `weights_only` unpickler's (the default of `torch.load` since
 * 2.6) minus what a state dict of float tensors never holds: sparse, quantized, meta and
 * subclassed tensors, dtypes and devices as values. A file that `torch.load(f,
 * weights_only=True)` refuses is refused here too, with the global's name.
 */
import type { StateTensor } from '../nn/module.js';
import { halfToFloat } from '../safetensors.js';
import { PthError } from './error.js';
import { describePy, isTuple, type PickleHooks, PyDict, PySet } from './pickle.js';

/** Element types of torch's storage classes (`torch.FloatStorage`, …). */
const STORAGE_TYPES = new Map(Object.entries({
  FloatStorage: { dtype: 'float32', itemSize: 4 },
  HalfStorage: { dtype: 'float16', itemSize: 2 },
  BFloat16Storage: { dtype: 'bfloat16', itemSize: 2 },
  DoubleStorage: { dtype: 'float64', itemSize: 8 },
  LongStorage: { dtype: 'int64', itemSize: 8 },
  IntStorage: { dtype: 'int32', itemSize: 4 },
  ShortStorage: { dtype: 'int16', itemSize: 2 },
  CharStorage: { dtype: 'int8', itemSize: 1 },
  ByteStorage: { dtype: 'uint8', itemSize: 1 },
  BoolStorage: { dtype: 'bool', itemSize: 1 },
}));

/** A storage class named by the pickle (a tag: nothing is constructed from it). */
export class StorageType {
  constructor(readonly name: string, readonly dtype: string, readonly itemSize: number) {}
  describe(): string {
    return `torch.${this.name}`;
  }
}

/** One storage of the file: its element type and size; its bytes are fetched only for the tensors that get loaded. */
export class Storage {
  #bytes: Uint8Array | undefined;

  constructor(
    readonly key: string,
    readonly type: StorageType,
    readonly numel: number,
    private readonly fetch: () => Uint8Array,
  ) {}

  /** The storage's raw little-endian bytes (exactly `numel · itemSize`). */
  get bytes(): Uint8Array {
    if (this.#bytes === undefined) {
      const b = this.fetch();
      if (b.length !== this.numel * this.type.itemSize) {
        throw new PthError(`storage "${this.key}" holds ${b.length} bytes, but ${this.numel} ${this.type.dtype} values need ${this.numel * this.type.itemSize}`);
      }
      this.#bytes = b;
    }
    return this.#bytes;
  }

  describe(): string {
    return `a storage (${this.type.describe()}, ${this.numel})`;
  }
}

/** A tensor as the pickle describes it: a strided view of a storage. */
export class TensorRef {
  constructor(
    readonly storage: Storage,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}

  describe(): string {
    return `a ${this.storage.type.dtype} tensor [${this.shape.join(', ')}]`;
  }
}

class Callable {
  constructor(readonly qualname: string, readonly apply: (args: readonly unknown[]) => unknown) {}
  describe(): string {
    return `the global ${this.qualname}`;
  }
}

const ALLOWED = new Map<string, Callable>();
for (const c of [
  new Callable('collections.OrderedDict', (args) => {
    if (args.length !== 0) throw new PthError(`OrderedDict(…) with ${args.length} arguments: a state dict's OrderedDict is built empty, then filled`);
    return new PyDict('OrderedDict');
  }),
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  new Callable('torch._utils._rebuild_tensor_v2', (args) => {
    if (args.length < 6 || args.length > 7) throw new PthError(`_rebuild_tensor_v2 takes 6 or 7 arguments, but got ${args.length}`);
    const metadata = args[6];
    // torch adds it only when the tensor has non-default flags (conjugate, negative, …).
    if (metadata !== undefined && metadata !== null && !(metadata instanceof PyDict && metadata.map.size === 0)) {
      const keys = metadata instanceof PyDict ? [...metadata.map.keys()].map(String).join(', ') : describePy(metadata);
      throw new PthError(`a tensor with metadata (${keys}) is not supported: save a .clone() of it`);
    }
    return rebuildTensor(args);
  }),
  // (storage, storage_offset, size, stride): torch < 1.0
  new Callable('torch._utils._rebuild_tensor', (args) => {
    if (args.length !== 4) throw new PthError(`_rebuild_tensor takes 4 arguments, but got ${args.length}`);
    return rebuildTensor(args);
  }),
  // nn.Parameter: (data, requires_grad, backward_hooks[, state]) — the data is all we keep.
  new Callable('torch._utils._rebuild_parameter', (args) => parameterData(args, 3)),
  new Callable('torch._utils._rebuild_parameter_with_state', (args) => parameterData(args, 4)),
  // Checkpoints keep sets of strings and numbers among their options; building one runs nothing.
  new Callable('builtins.set', (args) => new PySet(collection(args, 'set'), false)),
  new Callable('builtins.frozenset', (args) => new PySet(collection(args, 'frozenset'), true)),
  new Callable('torch.Size', (args) => {
    const dims = args[0];
    if (args.length !== 1 || !Array.isArray(dims) || !dims.every(isCount)) throw new PthError('torch.Size(…) needs one tuple of sizes');
    return Object.freeze([...dims]);
  }),
]) ALLOWED.set(c.qualname, c);

const ALLOWED_NAMES = 'collections.OrderedDict, torch._utils._rebuild_tensor_v2 (or _rebuild_tensor, _rebuild_parameter, _rebuild_parameter_with_state), torch.Size, builtins.set and frozenset, and torch\'s storage types (torch.FloatStorage, HalfStorage, BFloat16Storage, DoubleStorage, LongStorage, …)';

/** `set()` / `set(list)`: the items of a set's one optional argument. */
function collection(args: readonly unknown[], what: string): unknown[] {
  if (args.length === 0) return [];
  if (args.length !== 1 || !Array.isArray(args[0])) throw new PthError(`${what}(…) needs at most one list or tuple`);
  return [...(args[0] as unknown[])];
}

/** The allow-list: a global's value, or a PthError that names it. */
export function torchGlobal(module: string, name: string): unknown {
  // Python 2 pickles name the builtins module __builtin__ (as torch.load's fix_imports maps it).
  const full = `${module === '__builtin__' ? 'builtins' : module}.${name}`;
  const allowed = ALLOWED.get(full);
  if (allowed) return allowed;
  const storage = STORAGE_TYPES.get(name);
  // torch < 1.0 named the storages of CUDA tensors torch.cuda.*Storage; the bytes are the same.
  if (storage && (module === 'torch' || module === 'torch.cuda')) return new StorageType(name, storage.dtype, storage.itemSize);
  throw new PthError(`pickle global "${full}" is not allowed: a .pth of a state dict only needs ${ALLOWED_NAMES}. Nothing from the file was run or loaded.${hint(module, name)}`);
}

function hint(module: string, name: string): string {
  if (module.startsWith('__torch__')) return ' This is a TorchScript archive (torch.jit.save): save model.state_dict() with torch.save instead.';
  if (/^(torch\.nn\.modules|torchvision\.models|timm\.models|__main__)(\.|$)/.test(module) || (/^[A-Z]/.test(name) && !module.startsWith('builtins') && !module.startsWith('numpy'))) {
    return ' It looks like a whole model saved with torch.save(model): save model.state_dict() instead.';
  }
  return ' If it is part of a training checkpoint, save the state dict alone: torch.save(model.state_dict(), path).';
}

export function torchReduce(callable: unknown, args: readonly unknown[]): unknown {
  if (!(callable instanceof Callable)) throw new PthError(`pickle calls ${describePy(callable)}, which is not a function a state dict needs`);
  return callable.apply(args);
}

/** Hooks for a pickle of torch objects whose persistent ids are resolved by `persistentLoad`. */
export function torchHooks(persistentLoad: (pid: unknown) => unknown): PickleHooks {
  return { global: torchGlobal, reduce: torchReduce, persistentLoad };
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function rebuildTensor(args: readonly unknown[]): TensorRef {
  const [storage, offset, shape, stride] = args;
  if (!(storage instanceof Storage)) throw new PthError(`a tensor's storage must be a storage reference, but got ${describePy(storage)}`);
  if (!isCount(offset)) throw new PthError(`a tensor's storage offset must be a non-negative integer, but got ${describePy(offset)}`);
  if (!isTuple(shape) || !shape.every(isCount)) throw new PthError(`a tensor's size must be a tuple of non-negative integers, but got ${describePy(shape)}`);
  if (!isTuple(stride) || stride.length !== shape.length || !stride.every(isCount)) {
    throw new PthError(`a tensor's stride must be a tuple of ${shape.length} non-negative integers, but got ${describePy(stride)}`);
  }
  return new TensorRef(storage, offset, shape as number[], stride as number[]);
}

function parameterData(args: readonly unknown[], arity: number): TensorRef {
  if (args.length !== arity) throw new PthError(`a parameter's rebuild takes ${arity} arguments, but got ${args.length}`);
  if (!(args[0] instanceof TensorRef)) throw new PthError(`a parameter's data must be a tensor, but got ${describePy(args[0])}`);
  return args[0];
}

/** Storage type, key, element count of a persistent id `('storage', type, key, location, numel, …)`. */
export function storageId(pid: unknown, length: number): { type: StorageType; key: string; numel: number; rest: readonly unknown[] } {
  if (!isTuple(pid) || pid.length !== length || pid[0] !== 'storage') {
    if (isTuple(pid) && pid[0] === 'module') throw new PthError('the file holds a pickled module class (torch.save(model) in the legacy format): save model.state_dict() instead');
    throw new PthError(`persistent id ${describePy(pid)} is not a storage reference ('storage', type, key, location, size)`);
  }
  const [, type, key, location, numel] = pid;
  if (!(type instanceof StorageType)) throw new PthError(`a storage's type must be a torch storage class, but got ${describePy(type)}`);
  if (typeof key !== 'string') throw new PthError(`a storage's key must be a string, but got ${describePy(key)}`);
  if (typeof location !== 'string') throw new PthError(`storage "${key}": its location must be a string, but got ${describePy(location)}`);
  if (!isCount(numel)) throw new PthError(`storage "${key}": its size must be a non-negative integer, but got ${describePy(numel)}`);
  return { type, key, numel, rest: pid.slice(5) };
}

/** Tensors may repeat their storages (views, tied weights), but at most this many times over in all. */
const MAX_EXPANSION = 4;

/**
 * Turns the tensors of a state dict into row-major float32 `StateTensor`s: float16,
 * bfloat16 and float64 converted, `*.num_batches_tracked` counters dropped, any other
 * non-float tensor refused. Each tensor must lie inside its storage and have no more
 * elements than it (an expanded view is refused), and all together at most
 * {@link MAX_EXPANSION} times the elements of the file's storages: a hostile file cannot
 * make this allocate more than a few times its own size.
 */
export function materialise(entries: Iterable<[string, TensorRef]>, storageElements: number): Map<string, StateTensor> {
  const out = new Map<string, StateTensor>();
  let budget = MAX_EXPANSION * storageElements;
  for (const [key, t] of entries) {
    const { storage, offset, shape, stride } = t;
    const numel = shape.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(numel) || numel > storage.numel) {
      throw new PthError(`shape [${shape.join(', ')}] has more elements than its storage's ${storage.numel} (an expanded view? save a .contiguous() copy)`, key);
    }
    if (numel > 0) {
      const last = offset + shape.reduce((s, n, i) => s + (n - 1) * stride[i]!, 0);
      if (last >= storage.numel) {
        throw new PthError(`shape [${shape.join(', ')}], stride [${stride.join(', ')}] at offset ${offset} reach element ${last} of a storage of ${storage.numel}`, key);
      }
    }
    const { dtype } = storage.type;
    if (!['float32', 'float16', 'bfloat16', 'float64'].includes(dtype)) {
      if (key.endsWith('.num_batches_tracked')) continue;
      throw new PthError(`dtype ${dtype} is not supported (float tensors only: float32, float16, bfloat16, float64)`, key);
    }
    budget -= numel;
    if (budget < 0) throw new PthError(`the tensors hold more than ${MAX_EXPANSION}× the ${storageElements} values of the file's storages (the same storage viewed over and over?)`, key);
    out.set(key, { shape: [...shape], data: gather(storage, offset, shape, stride, numel) });
  }
  return out;
}

/** The tensor's values in row-major order, converted to float32 (float32 bits copied exactly). */
function gather(storage: Storage, offset: number, shape: readonly number[], stride: readonly number[], numel: number): Float32Array {
  const bytes = storage.bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(numel);
  const { dtype } = storage.type;
  if (dtype === 'float32' && isContiguous(shape, stride)) {
    new Uint8Array(out.buffer).set(bytes.subarray(4 * offset, 4 * (offset + numel)));
    if (!LITTLE_ENDIAN) for (let i = 0; i < numel; i++) out[i] = view.getFloat32(4 * (offset + i), true);
    return out;
  }
  const bits = new Uint32Array(out.buffer);
  const read: (i: number, j: number) => void = {
    float32: (i: number, j: number) => { bits[j] = view.getUint32(4 * i, true); },
    bfloat16: (i: number, j: number) => { bits[j] = view.getUint16(2 * i, true) << 16; },
    float16: (i: number, j: number) => { out[j] = halfToFloat(view.getUint16(2 * i, true)); },
    float64: (i: number, j: number) => { out[j] = view.getFloat64(8 * i, true); },
  }[dtype]!;
  // Row-major walk: the last index runs fastest; `index` follows it through the strides.
  const rank = shape.length;
  const counter = new Array<number>(rank).fill(0);
  let index = offset;
  for (let j = 0; j < numel; j++) {
    read(index, j);
    for (let d = rank - 1; d >= 0; d--) {
      index += stride[d]!;
      if (++counter[d]! < shape[d]!) break;
      index -= stride[d]! * shape[d]!;
      counter[d] = 0;
    }
  }
  return out;
}

/** Row-major strides (size-1 dimensions may have any stride, as in PyTorch's `is_contiguous`). */
function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
