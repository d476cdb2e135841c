/**
 * A restricted pickle machine: it reads the data opcodes of protocols 1–5 (numbers,
 * strings, bytes, tuples, lists, dicts, sets, the memo) and nothing that could name code
 * on its own. What a pickle may reference by name (GLOBAL, STACK_GLOBAL), call (REDUCE)
 * and fetch from outside (BINPERSID) is decided by the caller's {@link PickleHooks}; the
 * machine has no globals of its own. The opcodes that build arbitrary objects (INST, OBJ,
 * NEWOBJ, NEWOBJ_EX), the extension registry (EXT1/2/4), text persistent ids (PERSID)
 * and out-of-band buffers (protocol 5's NEXT_BUFFER) are refused, as is every byte that
 * is not an opcode. Nothing in a pickle is ever run: the result is plain data.
 *
 * The machine is a loop over an explicit stack (no recursion), every length is checked
 * against the bytes left before anything is read or allocated, and lists grow by a loop,
 * never by spreading an unbounded array into arguments.
 */
import { PthError } from './error.js';

/** A Python dict (or OrderedDict), in insertion order. Keys are Python's hashable scalars. */
export class PyDict {
  readonly map = new Map<DictKey, unknown>();
  constructor(readonly className = 'dict') {}
}

/** A Python set or frozenset (kept as a list: nothing here needs membership). */
export class PySet {
  constructor(readonly items: unknown[], readonly frozen: boolean) {}
}

export type DictKey = string | number | bigint | boolean | null;

/** Tuples are frozen arrays; lists are ordinary ones. */
export const isTuple = (v: unknown): v is readonly unknown[] => Array.isArray(v) && Object.isFrozen(v);
const tuple = (items: unknown[]): readonly unknown[] => Object.freeze(items);

export interface PickleHooks {
  /** GLOBAL / STACK_GLOBAL `module.name`: the value it stands for, or a thrown PthError. */
  global(module: string, name: string): unknown;
  /** REDUCE: `callable(*args)` for a callable `global` returned. */
  reduce(callable: unknown, args: readonly unknown[]): unknown;
  /** BINPERSID: the object a persistent id refers to. */
  persistentLoad(pid: unknown): unknown;
}

/** Integers longer than this many bytes (LONG1/LONG4) are refused: 8 KiB-bit numbers have no place in a state dict. */
const MAX_LONG_BYTES = 1024;

const OPCODE_NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4a: 'BININT',
  0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE',
  0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND',
  0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET',
  0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

/** Why each refused opcode is refused (the message names the opcode and its position too). */
const REFUSED: Record<number, string> = {
  0x69: 'it builds an object of any class', // INST
  0x6f: 'it builds an object of any class', // OBJ
  0x81: 'it builds an object of any class', // NEWOBJ
  0x92: 'it builds an object of any class', // NEWOBJ_EX
  0x82: 'it loads from the extension registry', // EXT1
  0x83: 'it loads from the extension registry',
  0x84: 'it loads from the extension registry',
  0x50: 'torch.save writes binary persistent ids (BINPERSID) only', // PERSID
  0x97: 'out-of-band buffers are not part of a file', // NEXT_BUFFER
  0x98: 'out-of-band buffers are not part of a file', // READONLY_BUFFER
  0x53: 'protocol-0 strings are not written by torch.save', // STRING
  0x56: 'protocol-0 strings are not written by torch.save', // UNICODE
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Bytes as ISO-8859-1 (Python's latin-1: byte = code point). Not `TextDecoder('latin1')`:
 * the Encoding Standard maps that label to windows-1252, and not every runtime has it.
 */
export function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/**
 * Runs the pickle that starts at `start` up to its STOP; returns its value and the offset
 * just after the STOP.
 */
export function unpickle(bytes: Uint8Array, start: number, hooks: PickleHooks): { value: unknown; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const memo = new Map<number, unknown>();
  const metastack: unknown[][] = [];
  let stack: unknown[] = [];
  let p = start;
  let op = 0;
  let at = start;

  const fail = (message: string): never => {
    throw new PthError(`pickle ${OPCODE_NAMES[op] ?? 'opcode'} at byte ${at}: ${message}`);
  };
  const need = (n: number): number => {
    if (n > bytes.length - p) fail(`needs ${n} more bytes, but the file ends at byte ${bytes.length} (truncated?)`);
    const q = p;
    p += n;
    return q;
  };
  const u8 = () => bytes[need(1)]!;
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const u64 = (): number => {
    const v = view.getBigUint64(need(8), true);
    if (v > BigInt(bytes.length)) fail(`length ${v} is larger than the whole ${bytes.length}-byte file`);
    return Number(v);
  };
  const line = (): string => {
    const nl = bytes.indexOf(0x0a, p);
    if (nl < 0) fail('its text argument has no end of line (truncated?)');
    const s = latin1(bytes.subarray(p, nl));
    p = nl + 1;
    return s;
  };
  const text = (n: number): string => {
    const q = need(n);
    try {
      return utf8.decode(bytes.subarray(q, q + n));
    } catch {
      return fail('its string is not valid UTF-8');
    }
  };
  const copy = (n: number): Uint8Array => {
    const q = need(n);
    return bytes.slice(q, q + n);
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail('the stack is empty');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail('the stack is empty');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const outer = metastack.pop();
    if (outer === undefined) fail('there is no MARK to pop to');
    stack = outer!;
    return items;
  };
  const put = (index: number): void => {
    memo.set(index, top());
  };
  const get = (index: number): void => {
    if (!memo.has(index)) fail(`memo entry ${index} was never stored`);
    stack.push(memo.get(index));
  };
  const append = (list: unknown, items: readonly unknown[]): void => {
    if (!Array.isArray(list) || isTuple(list)) fail(`cannot append to ${describePy(list)}`);
    for (const item of items) (list as unknown[]).push(item);
  };
  const setItems = (dict: unknown, items: readonly unknown[]): void => {
    if (!(dict instanceof PyDict)) fail(`cannot set items of ${describePy(dict)}`);
    if (items.length % 2 !== 0) fail(`has an odd number (${items.length}) of keys and values`);
    for (let i = 0; i < items.length; i += 2) (dict as PyDict).map.set(dictKey(items[i], fail), items[i + 1]);
  };
  const addItems = (set: unknown, items: readonly unknown[]): void => {
    if (!(set instanceof PySet) || set.frozen) fail(`cannot add items to ${describePy(set)}`);
    for (const item of items) (set as PySet).items.push(item);
  };
  const long = (n: number): number | bigint => {
    if (n > MAX_LONG_BYTES) fail(`a ${n}-byte integer is larger than the ${MAX_LONG_BYTES}-byte limit`);
    return littleEndianInt(bytes.subarray(need(n), p));
  };
  const global = (module: string, name: string): unknown => hooks.global(module, name);

  for (;;) {
    at = p;
    op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail(`protocol ${bytes[p - 1]} is newer than the 5 this reader knows`);
        break;
      case 0x95: // FRAME: a length prefix for buffering; the data follows inline
        u64();
        break;
      case 0x2e: // STOP
        return { value: pop(), end: p };
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length === 0) popMark();
        else stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;

      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(view.getInt32(need(4), true)); break; // BININT
      case 0x8a: stack.push(long(u8())); break; // LONG1
      case 0x8b: stack.push(long(u32())); break; // LONG4
      case 0x47: stack.push(view.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x49: { // INT: text; protocol 1 writes booleans as I01 / I00
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : textInt(s, fail));
        break;
      }
      case 0x4c: // LONG: text, with an optional trailing L
        stack.push(textInt(line().replace(/L$/, ''), fail));
        break;
      case 0x46: { // FLOAT: text
        const s = line().trim();
        const v = Number(s);
        if (s === '' || (Number.isNaN(v) && !/^[+-]?nan$/i.test(s))) fail(`"${s.slice(0, 40)}" is not a number`);
        stack.push(/^[+-]?inf$/i.test(s) ? (s.startsWith('-') ? -Infinity : Infinity) : v);
        break;
      }

      case 0x58: stack.push(text(u32())); break; // BINUNICODE
      case 0x8c: stack.push(text(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(text(u64())); break; // BINUNICODE8
      case 0x55: { // SHORT_BINSTRING (a Python 2 str; torch.load decodes it as text)
        const n = u8();
        stack.push(latin1(bytes.subarray(need(n), p)));
        break;
      }
      case 0x54: { // BINSTRING
        const n = view.getInt32(need(4), true);
        if (n < 0) fail(`negative length ${n}`);
        stack.push(latin1(bytes.subarray(need(n), p)));
        break;
      }
      case 0x43: stack.push(copy(u8())); break; // SHORT_BINBYTES
      case 0x42: stack.push(copy(u32())); break; // BINBYTES
      case 0x8e: stack.push(copy(u64())); break; // BINBYTES8
      case 0x96: stack.push(copy(u64())); break; // BYTEARRAY8

      case 0x29: stack.push(tuple([])); break; // EMPTY_TUPLE
      case 0x74: { // TUPLE
        const items = popMark(); // (before `stack` is read: popMark replaces it)
        stack.push(tuple(items));
        break;
      }
      case 0x85: { // TUPLE1
        const a = pop();
        stack.push(tuple([a]));
        break;
      }
      case 0x86: { // TUPLE2
        const b = pop();
        const a = pop();
        stack.push(tuple([a, b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(tuple([a, b, c]));
        break;
      }
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: { // LIST
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x61: { // APPEND
        const item = pop();
        append(top(), [item]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const d = new PyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: stack.push(new PySet([], false)); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark();
        addItems(top(), items);
        break;
      }
      case 0x91: { // FROZENSET
        const items = popMark();
        stack.push(new PySet(items, true));
        break;
      }

      case 0x70: put(textInt(line(), fail) as number); break; // PUT
      case 0x71: put(u8()); break; // BINPUT
      case 0x72: put(u32()); break; // LONG_BINPUT
      case 0x94: put(memo.size); break; // MEMOIZE
      case 0x67: get(textInt(line(), fail) as number); break; // GET
      case 0x68: get(u8()); break; // BINGET
      case 0x6a: get(u32()); break; // LONG_BINGET

      case 0x63: { // GLOBAL: "module\nname\n"
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail(`needs two strings, but got ${describePy(module)} and ${describePy(name)}`);
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const callable = pop();
        if (!isTuple(args)) fail(`arguments must be a tuple, but got ${describePy(args)}`);
        stack.push(hooks.reduce(callable, args as readonly unknown[]));
        break;
      }
      case 0x51: // BINPERSID
        stack.push(hooks.persistentLoad(pop()));
        break;
      case 0x62: { // BUILD: obj.__setstate__(state)
        const state = pop();
        const obj = top();
        // An OrderedDict state dict carries its `_metadata` (module versions) as instance
        // attributes; nothing here needs them. Anything else has no state to set.
        if (!(obj instanceof PyDict) || !(state instanceof PyDict || state === null || isTuple(state))) {
          fail(`setting the state of ${describePy(obj)} is not allowed`);
        }
        break;
      }

      default:
        if (op in REFUSED) fail(`not allowed: ${REFUSED[op]}`);
        fail(`0x${op.toString(16).padStart(2, '0')} is not a pickle opcode (not a pickle, or a corrupt one)`);
    }
  }
}

/** Python's `int.from_bytes(b, 'little', signed=True)`; a number when it is a safe integer. */
function littleEndianInt(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let hex = '';
  for (let i = b.length - 1; i >= 0; i--) hex += b[i]!.toString(16).padStart(2, '0');
  let v = BigInt(`0x${hex}`);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function textInt(s: string, fail: (message: string) => never): number | bigint {
  if (!/^\s*[+-]?\d{1,2000}\s*$/.test(s)) fail(`"${s.slice(0, 40)}" is not an integer`);
  const v = BigInt(s.trim());
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function dictKey(k: unknown, fail: (message: string) => never): DictKey {
  if (k === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof k)) return k as DictKey;
  return fail(`a dict key must be a string or a number, but got ${describePy(k)}`);
}

/** A short description of a pickled value for messages: `a dict`, `the int 3`, `a tuple of 2`. */
export function describePy(v: unknown): string {
  if (v === null) return 'None';
  if (v === undefined) return 'nothing';
  switch (typeof v) {
    case 'boolean': return `the bool ${v ? 'True' : 'False'}`;
    case 'number': return Number.isInteger(v) ? `the int ${v}` : `the float ${v}`;
    case 'bigint': return 'a large int';
    case 'string': return `the str ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
    default: break;
  }
  if (v instanceof Uint8Array) return `bytes (${v.length})`;
  if (isTuple(v)) return `a tuple of ${v.length}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v instanceof PyDict) return `${v.className === 'dict' ? 'a dict' : `an ${v.className}`} of ${v.map.size}`;
  if (v instanceof PySet) return `a ${v.frozen ? 'frozenset' : 'set'} of ${v.items.length}`;
  const named = (v as { describe?: () => string }).describe;
  return typeof named === 'function' ? named.call(v) : 'an object';
}
