"""Reading a local folder of images into float32 arrays, with PIL and NumPy only.

A folder holds one sub-folder per class (``flowers/daisy/*.jpg``) or is flat, and may be
pre-split into ``train/`` and ``validation/`` (or ``val/``, ``test/``); otherwise
:func:`list_image_files` splits it 80/20 after a seeded shuffle. :func:`load_image_folder`
decodes every file to RGB, crops the centre square and resizes it like the reference's
``tf.image.resize(..., antialias=True)``; :func:`folder_class_names` names the classes.
No TensorFlow is needed: :func:`ddim_tutorial.data.datasets.load_dataset` batches these arrays.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from ddim_tutorial.checks import check_positive_int

__all__ = ["load_image_folder", "folder_class_names", "UnreadableImageWarning"]

#: File name endings that :func:`load_image_folder` reads; every other file is ignored.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

#: Sub-folder names that hold the validation images when a folder is pre-split.
VALIDATION_FOLDER_NAMES = ("validation", "val", "test")

#: The splits that ``split=`` accepts besides None (all images).
SPLITS = ("train", "validation")

_VALIDATION_FRACTION = 0.2


class UnreadableImageWarning(UserWarning):
    """An image file in a folder could not be decoded and was skipped."""


def list_image_files(directory: str | os.PathLike, split: str | None = None, *, seed: int = 0) -> list[Path]:
    """The image files of ``directory`` that belong to ``split``, in a deterministic order.

    A folder with a ``train/`` sub-folder and one of ``validation/``, ``val/`` or ``test/``
    is pre-split: those sub-folders are used as they are. Any other folder is split 80/20
    after a seeded shuffle of the sorted file list, like the reference's re-split of
    Oxford Flowers 102; the same ``seed`` always gives the same, disjoint halves.
    """
    root = _check_directory(directory)
    if split is not None and split not in SPLITS:
        raise ValueError(f"split={split!r} is invalid: use None (all images), 'train' or 'validation'.")

    split_folders = _split_folders(root)
    if split is not None and split_folders is not None:
        folder = split_folders[0] if split == "train" else split_folders[1]
        files = _find_images(folder)
        if not files:
            raise FileNotFoundError(
                f"no images found in {folder} (the {split!r} split of {root}); "
                f"add files ending in {', '.join(IMAGE_EXTENSIONS)}.")
        return files

    files = _find_images(root)
    if not files:
        raise FileNotFoundError(
            f"no images found in {root} or its sub-folders; accepted files end in "
            f"{', '.join(IMAGE_EXTENSIONS)} (one sub-folder per class or a flat folder both work).")
    if split is None:
        return files
    order = np.random.default_rng(seed).permutation(len(files))
    num_validation = int(round(len(files) * _VALIDATION_FRACTION))
    if len(files) >= 2:
        num_validation = min(max(num_validation, 1), len(files) - 1)
    chosen = order[num_validation:] if split == "train" else order[:num_validation]
    if len(chosen) == 0:
        raise ValueError(
            f"{root} holds only {len(files)} image(s), too few for an 80/20 train/validation split; "
            "add images or use split=None.")
    return [files[i] for i in sorted(chosen)]


def load_image_folder(
    directory: str | os.PathLike,
    image_size: int,
    split: str | None = None,
    *,
    max_images: int | None = None,
    seed: int = 0,
    labels: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Read every image under ``directory`` as float32 ``[N, image_size, image_size, 3]`` in [0, 1].

    With ``labels=True`` the result is ``(images, class_labels)``: each image's class is the
    sub-folder it lies in (see :func:`folder_class_names`), an int32 array ``[N]``.

    Preprocessing follows the reference: crop the centre square, resize it with an
    antialiased bilinear (triangle) filter, which is what ``tf.image.resize(...,
    antialias=True)`` computes, and clip to ``[0, 1]``. The filter runs in float32, so
    the result matches TensorFlow's to well under one grey level.

    Files are found recursively (one sub-folder per class, or flat). Grayscale, palette,
    CMYK and 16-bit images become RGB; transparent pixels are composited onto white so that
    cut-out images get a white, not black, background. EXIF rotation is applied. Files with
    other extensions are ignored; unreadable images are skipped with one
    :class:`UnreadableImageWarning` each. See :func:`list_image_files` for ``split`` and
    ``seed``. ``max_images`` keeps a seeded random subset of that many images.
    """
    check_positive_int("image_size", image_size, advice="it must be a positive integer such as 64")
    if max_images is not None:
        check_positive_int("max_images", max_images, advice="it must be None or a positive integer")

    files = list_image_files(directory, split, seed=seed)
    if max_images is not None and max_images < len(files):
        keep = np.random.default_rng(seed).choice(len(files), size=max_images, replace=False)
        files = [files[i] for i in sorted(keep)]

    label_of = _folder_labeller(directory, split) if labels else None
    images, class_labels = [], []
    for path in files:
        label = label_of(path) if label_of is not None else 0
        try:
            pixels = _read_rgb(path)
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
            warnings.warn(f"skipping unreadable image {path}: {err}", UnreadableImageWarning, stacklevel=2)
            continue
        images.append(resize_center_square(pixels, image_size))
        class_labels.append(label)
    if not images:
        raise ValueError(
            f"none of the {len(files)} image file(s) in {Path(directory)} could be read "
            "(see the warnings above); check that they are valid JPEG/PNG files.")
    images = np.stack(images).astype(np.float32, copy=False)
    return (images, np.asarray(class_labels, dtype=np.int32)) if labels else images


def folder_class_names(directory: str | os.PathLike) -> list[str]:
    """The classes of an image folder: its sub-folders (of ``train/`` when it is pre-split), sorted.

    This is the layout of ``keras.utils.image_dataset_from_directory``: one sub-folder per
    class, e.g. ``flowers/daisy/*.jpg``. Raises ValueError when there are none.
    """
    root = _class_root(_check_directory(directory))
    names = sorted(entry.name for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".")
                   and _find_images(entry))
    if not names:
        raise ValueError(f"{root} has no sub-folders of images, so its images have no classes; for class "
                         "labels put each class in its own sub-folder (e.g. flowers/daisy/1.jpg).")
    return names


def _split_folders(root: Path) -> tuple[Path, Path] | None:
    """``(train/, validation/)`` of a pre-split folder (``val/`` or ``test/`` also count), else None."""
    validation_dir = next((root / name for name in VALIDATION_FOLDER_NAMES if (root / name).is_dir()), None)
    return (root / "train", validation_dir) if (root / "train").is_dir() and validation_dir is not None else None


def _class_root(root: Path) -> Path:
    """Where the class sub-folders of ``root`` lie: ``train/`` in a pre-split folder, else ``root``."""
    split_folders = _split_folders(root)
    return split_folders[0] if split_folders is not None else root


def _folder_labeller(directory: str | os.PathLike, split: str | None) -> Any:
    """``label_of(path)``: the index of a file's class sub-folder among :func:`folder_class_names`.

    In a pre-split folder the classes of ``validation/`` (or ``test/``) are named like those
    of ``train/``: ``test/daisy/7.jpg`` is a daisy.
    """
    root = _check_directory(directory)
    names = folder_class_names(root)
    index = {name: i for i, name in enumerate(names)}
    pre_split = _class_root(root) != root

    def label_of(path: Path) -> int:
        parts = path.relative_to(root).parts[1:] if pre_split else path.relative_to(root).parts
        if len(parts) < 2 or parts[0] not in index:
            raise ValueError(f"{path} lies in no class sub-folder of {root} (classes: {', '.join(names)}); "
                             "move it into one, or load without labels.")
        return index[parts[0]]

    return label_of


def resize_center_square(pixels: np.ndarray, image_size: int) -> np.ndarray:
    """Centre-crop an ``[H, W, 3]`` float image in [0, 1] to a square and resize it with antialiasing.

    The crop offsets are those of ``tf.image.crop_to_bounding_box`` in the reference:
    ``(H - side) // 2`` and ``(W - side) // 2``. PIL's bilinear filter widens its triangle
    kernel by the downscaling factor, exactly like TensorFlow's ``antialias=True``.
    """
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = pixels[top:top + side, left:left + side]
    if side != image_size:
        square = np.stack(
            [np.asarray(Image.fromarray(np.ascontiguousarray(square[..., channel], dtype=np.float32))
                        .resize((image_size, image_size), Image.Resampling.BILINEAR))
             for channel in range(3)],
            axis=-1,
        )
    return np.clip(square, 0.0, 1.0).astype(np.float32, copy=False)


def _check_directory(directory: str | os.PathLike) -> Path:
    if directory is None or (isinstance(directory, str) and not directory.strip()):
        raise ValueError("directory is empty: pass the path of a folder of images.")
    root = Path(directory).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"image folder {root} does not exist; pass an existing folder of JPEG/PNG images "
            "(data_dir=, --data-dir or DDIM_DATA_DIR).")
    if not root.is_dir():
        raise ValueError(f"{root} is a file, not a folder; pass the folder that contains the images.")
    return root


def _find_images(root: Path) -> list[Path]:
    """Image files under ``root``, sorted by relative path; hidden files and folders are skipped."""
    found = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        found.extend(Path(folder) / name for name in names
                     if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def _read_rgb(path: Path) -> np.ndarray:
    """Decode one file into float32 RGB ``[H, W, 3]`` in [0, 1]."""
    with Image.open(path) as image:
        image.seek(0)  # first frame of a GIF / animated WebP
        image.load()
        image = ImageOps.exif_transpose(image)
        if image.mode.startswith("I;16") or image.mode in ("I", "F"):
            gray = np.asarray(image, dtype=np.float32)
            # 16-bit files (PIL's "I;16" modes, or "I" holding values above 255) span 0..65535.
            scale = 65535.0 if image.mode.startswith("I;16") or gray.max(initial=0) > 255 else 255.0
            if image.mode == "F" and gray.max(initial=0) <= 1.0:
                scale = 1.0
            return np.repeat(np.clip(gray / scale, 0.0, 1.0)[..., None], 3, axis=-1)
        if image.mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")
        if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba)
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    return rgb / 255.0
