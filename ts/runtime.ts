/** True in Node (and runtimes that mimic its `process.versions.node`, which then also have its built-ins). */
export const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
