// The benchmarks' training step, one definition for bench/train.mjs (lib/train-ours.mjs),
// bench/train-profile.mjs and bench/ab/train.mjs: opt.zeroGrad(); out = net.forwardAll(x);
// loss = googlenetLoss(out, targets); loss.backward(); opt.step() — each phase timed on
// its own (every call is synchronous: the threaded build's team works inside the call),
// the step's tensors disposed at its end.

/** A step function for `net` (in training mode) and `opt`: each call returns the phases' ms and the loss. */
export function trainStep(lib, net, opt, x, targets) {
  return () => {
    const t0 = performance.now();
    opt.zeroGrad();
    const t1 = performance.now();
    const out = net.forwardAll(x);
    const t2 = performance.now();
    const loss = lib.googlenetLoss(out, targets);
    const t3 = performance.now();
    loss.backward();
    const t4 = performance.now();
    opt.step();
    const t5 = performance.now();
    const value = loss.item();
    for (const t of [loss, out.logits, out.aux1, out.aux2]) t?.dispose();
    return { phases: { zeroGrad: t1 - t0, forward: t2 - t1, loss: t3 - t2, backward: t4 - t3, step: t5 - t4 }, loss: value };
  };
}
