"""Files: atomic writes with the user's file mode, and reading images."""

from .images import (
                     IMAGE_SUFFIXES,
                     find_images,
                     fit,
                     load_folder,
                     load_image,
                     load_prepared,
                     mode_for,
                     prepare,
                     to_tensor,
)
from .writing import (
                     atomic_write,
                     copy_file,
                     file_stems,
                     prepare_dir,
                     save_npy,
                     save_png,
                     to_pil,
                     write_json,
                     write_text,
)

__all__ = ["IMAGE_SUFFIXES", "find_images", "fit", "load_folder", "load_image", "load_prepared",
           "mode_for", "prepare", "to_tensor", "atomic_write", "copy_file", "file_stems",
           "prepare_dir", "save_npy", "save_png", "to_pil", "write_json", "write_text"]
