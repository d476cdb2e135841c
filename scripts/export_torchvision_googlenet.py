#!/usr/bin/env python3
"""Writes torchvision's pretrained GoogLeNet (IMAGENET1K_V1) as a safetensors file that
inception-wasm loads with no mapping table.

You rarely need it: `loadPth(bytes)` reads torchvision's own `.pth` file in JavaScript.
Where a safetensors file is wanted (smaller, memory-mappable, the format the Hub uses),
run it wherever torch and torchvision are installed:

    pip install torch torchvision safetensors
    python scripts/export_torchvision_googlenet.py googlenet.safetensors          # downloads the weights
    python scripts/export_torchvision_googlenet.py googlenet.safetensors --pth googlenet-1378be20.pth   # a local file
    python scripts/export_torchvision_googlenet.py googlenet-aux.safetensors --aux

then, in JavaScript:

    const net = new GoogLeNet({ variant: 'torchvision', transformInput: true });
    net.loadStateDict(loadSafetensors(bytes));   // with --aux: add { ignoreAux: true }, or build with auxLogits: true

The file holds float32 tensors under torchvision's own state-dict keys
(`conv1.conv.weight`, `conv1.bn.running_var`, `inception3a.branch2.0.conv.weight`, …).
BatchNorm's `num_batches_tracked` counters are dropped (they do nothing at inference).
The metadata records the source and that the weights expect `transform_input=True`:
torchvision enables it for these weights, so inputs normalised with the ImageNet
mean/std are re-normalised to the range the original (Inception) training used.
"""
import argparse

import torch
import torchvision
from safetensors.torch import save_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output .safetensors path")
    parser.add_argument("--aux", action="store_true", help="keep the auxiliary heads aux1/aux2 (training only; +6.4 M parameters)")
    parser.add_argument("--pth", help="a local state-dict file (e.g. torchvision's googlenet-1378be20.pth) instead of downloading")
    args = parser.parse_args()

    weights = torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1
    if args.pth:
        # The same model torchvision builds for its weights, from the local file.
        model = torchvision.models.googlenet(weights=None, aux_logits=True, transform_input=True, init_weights=False)
        state = torch.load(args.pth, map_location="cpu")
        state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        model.eval()
    else:
        # aux_logits=True keeps torchvision from dropping the heads' weights while loading
        model = torchvision.models.googlenet(weights=weights, aux_logits=True).eval()
    state = {
        k: v.detach().to(torch.float32).contiguous()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked") and (args.aux or not k.startswith(("aux1.", "aux2.")))
    }
    metadata = {
        "format": "pt",
        "source": args.pth or f"torchvision {torchvision.__version__} googlenet {weights.name}",
        "transform_input": "true",
        "num_classes": str(model.fc.out_features),
    }
    save_file(state, args.out, metadata=metadata)
    params = sum(v.numel() for k, v in state.items() if "running_" not in k)
    print(f"wrote {args.out}: {len(state)} tensors, {params:,} parameters")


if __name__ == "__main__":
    main()
