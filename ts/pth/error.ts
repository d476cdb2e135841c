import { InceptionWasmError } from '../errors.js';

/**
 * A PyTorch file `loadPth` cannot read or will not load: not a `torch.save` file, truncated
 * or malformed, a pickle that asks for anything but a state dict's few globals, a tensor
 * that is not float or lies outside its storage. `key` names the state-dict entry when
 * there is one.
 */
export class PthError extends InceptionWasmError {
  readonly key: string | undefined;

  constructor(message: string, key?: string) {
    super('loadPth', key === undefined ? message : `"${key}": ${message}`);
    this.key = key;
  }
}
