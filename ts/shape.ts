/** Number of elements of a shape. */
export const numelOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
