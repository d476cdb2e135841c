#!/usr/bin/env python3
"""Writes ts/imagenet-classes.ts from ../shared/fixtures/imagenet_classes.json (torchvision's
1,000 ImageNet class names, index order). usage: python3 scripts/make-imagenet-classes.py"""
import json, os

root = os.path.join(os.path.dirname(__file__), '..')
names = json.load(open(os.path.join(root, '../shared/fixtures/imagenet_classes.json')))
assert len(names) == 1000, len(names)
lines = ["// Generated from ../shared/fixtures/imagenet_classes.json (torchvision's ImageNet class",
         "// names, index order) by scripts/make-imagenet-classes.py; test/classify.test.ts checks it.",
         "",
         '/** The 1,000 ImageNet class names torchvision ships (`weights.meta["categories"]`), index order. */',
         "export const IMAGENET_CLASSES: readonly string[] = Object.freeze(["]
lines += ['  ' + json.dumps(n, ensure_ascii=False) + ',' for n in names]
lines.append(']);')
open(os.path.join(root, 'ts/imagenet-classes.ts'), 'w').write('\n'.join(lines) + '\n')
