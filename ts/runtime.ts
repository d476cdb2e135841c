/** True in Node (and runtimes that mimic its `process.versions.node`, which then also have its built-ins). */
export const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/**
 * A Node built-in (`node:fs/promises`, `node:worker_threads`), imported only where it is
 * used, in Node. The specifier is a variable and the import is marked for bundlers to
 * leave alone (Vite: `@vite-ignore`, webpack: `webpackIgnore`), so that building the
 * package for a browser neither tries to resolve a Node module nor warns about it.
 */
export async function nodeBuiltin<T>(specifier: 'node:fs/promises' | 'node:worker_threads'): Promise<T> {
  return (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as T;
}
