#!/usr/bin/env python3
"""Writes photo_12mp.jpg: a 4000 x 3000 (12-megapixel) JPEG, quality 90, 4:2:0, as a phone
camera writes, for timing decodeImage / preprocess (bench/image.mjs). A mosaic of
scikit-image's CC0 / public-domain sample photos at their own resolution (mirrored to fill),
so that the file has a camera photo's detail per pixel; an upscaled small photo would be
smooth and decode faster than real ones.

usage: /usr/bin/python3 bench/images/make_photo_12mp.py   (needs python3-pil python3-skimage)
"""
import os
from PIL import Image, ImageOps

DATA = '/usr/lib/python3/dist-packages/skimage/data'
W, H = 4000, 3000
tiles = [Image.open(os.path.join(DATA, n)).convert('RGB') for n in
         ['retina.jpg', 'hubble_deep_field.jpg', 'rocket.jpg', 'astronaut.png', 'coffee.png', 'chelsea.png', 'motorcycle_left.png']]
canvas = Image.new('RGB', (W, H))
x = y = row_h = i = 0
while y < H:
    t = tiles[i % len(tiles)]
    if (i // len(tiles)) % 2:
        t = ImageOps.mirror(t)
    canvas.paste(t, (x, y))
    x += t.width
    row_h = max(row_h, t.height)
    i += 1
    if x >= W:
        x, y, row_h = 0, y + row_h, 0
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'photo_12mp.jpg')
canvas.save(out, 'JPEG', quality=90)
print(out, os.path.getsize(out), 'bytes')
