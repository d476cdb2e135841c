"""Writes the reference safetensors files that test/safetensors.test.ts reads, with the
reference implementation (`pip install safetensors numpy`), in the layout
scripts/export_torchvision_googlenet.py produces: torchvision key names, float32 data,
BatchNorm `num_batches_tracked` counters as I64, `__metadata__` strings.

Run from the repository root: python test/safetensors/make_reference_files.py
Each tensor's float64 sum and first value go into the metadata, so the test checks what it
parsed against numbers this script computed, not against our own reader.
"""
import numpy as np
from safetensors.numpy import save_file

OUT = "test/safetensors"
rng = np.random.default_rng(20261128)


def basic_conv(prefix, cin, cout, k):
    return {
        f"{prefix}.conv.weight": rng.uniform(-0.5, 0.5, (cout, cin, k, k)).astype(np.float32),
        f"{prefix}.bn.weight": rng.uniform(0.75, 1.25, (cout,)).astype(np.float32),
        f"{prefix}.bn.bias": rng.uniform(-0.125, 0.125, (cout,)).astype(np.float32),
        f"{prefix}.bn.running_mean": rng.uniform(-0.125, 0.125, (cout,)).astype(np.float32),
        f"{prefix}.bn.running_var": rng.uniform(0.5, 1.5, (cout,)).astype(np.float32),
        f"{prefix}.bn.num_batches_tracked": np.array(1000, dtype=np.int64),
    }


def with_checks(tensors, extra):
    meta = dict(extra)
    for name, t in tensors.items():
        if t.dtype.kind == "f":
            meta[f"sum:{name}"] = repr(float(t.astype(np.float64).sum()))
            meta[f"first:{name}"] = repr(float(t.reshape(-1)[0]))
    return meta


# torchvision-style Inception(16, 4, 4, 8, 2, 4, 4): branch3's conv is 3x3 as in torchvision
inception = {}
inception.update(basic_conv("branch1", 16, 4, 1))
inception.update(basic_conv("branch2.0", 16, 4, 1))
inception.update(basic_conv("branch2.1", 4, 8, 3))
inception.update(basic_conv("branch3.0", 16, 2, 1))
inception.update(basic_conv("branch3.1", 2, 4, 3))
inception.update(basic_conv("branch4.1", 16, 4, 1))
save_file(inception, f"{OUT}/tv_inception.safetensors",
          metadata=with_checks(inception, {"format": "pt", "model": "Inception(16,4,4,8,2,4,4) torchvision-style"}))

# half precision: Linear(3, 2) stored as F16 (exactly representable values)
half = {
    "weight": np.array([[0.5, -1.25, 2.0], [65504.0, -0.000061035156, 0.333251953125]], dtype=np.float16),
    "bias": np.array([1.0, -2.5], dtype=np.float16),
}
save_file(half, f"{OUT}/linear_f16.safetensors", metadata=with_checks(half, {"format": "np"}))
print("wrote", f"{OUT}/tv_inception.safetensors", f"{OUT}/linear_f16.safetensors")
