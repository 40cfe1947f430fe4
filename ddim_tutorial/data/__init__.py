"""Images for training and for KID: Oxford Flowers 102 from TFDS, a folder of photographs, or
synthetic flowers, through the one entry point :func:`load_dataset`."""

from ddim_tutorial.data.datasets import DatasetUnavailableError, batch_images, class_names, load_dataset, take_images

__all__ = ["load_dataset", "DatasetUnavailableError", "batch_images", "take_images", "class_names"]
