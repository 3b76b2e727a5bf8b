"""Classify your own images of handwritten digits with a registered model or a checkpoint.

    python -m pipeline.stages.predict digit.png                                   # models:/mnist-mlp@champion
    python -m pipeline.stages.predict my_digits/ --model models:/mnist-cnn@champion
    python -m pipeline.stages.predict digit.png --model models:/mnist-mlp/3       # a given version
    python -m pipeline.stages.predict digit.png --checkpoint outputs/main/checkpoints/best.ckpt
    python -m pipeline.stages.predict photo.jpg --fit                             # any size: crop, scale, centre

Prints one line per image: `<path>: <class> (probability <p>)`.

How an image becomes a model input (the way MNIST's own images were made):

* Readable formats: whatever Pillow reads (PNG, JPEG, BMP, GIF, TIFF, WebP). In a
  folder, files with those extensions are classified, in name order; other files
  are ignored. A file given by name must be an image.
* Modes: 1 (bilevel), L (grayscale), LA, P (palette), RGB, RGBA. Colour becomes
  grayscale by luminance (ITU-R 601-2, Pillow's `L`); transparency is composited
  over white (a digit drawn on a transparent canvas counts as ink on paper).
  16-bit, float, CMYK and other modes are refused: save the image as 8-bit PNG.
* Size: 28x28 pixels exactly, unless `--fit`. With `--fit`, any image is cut to
  the bounding box of its ink, scaled (aspect kept) so its longer side is 20 px,
  and placed in a 28x28 frame with its centre of mass at the centre: MNIST's own
  preprocessing. Resizing is opt-in because a silently squashed photo gives a
  confident wrong answer.
* Polarity: MNIST digits are light ink on a dark background. The background is
  estimated as the median of the image's outermost ring of pixels; if it is
  light (> 0.5 after scaling to [0, 1]), the image is dark-on-light (pen on
  paper) and is inverted. Then pixels are divided by 255, as in training.

Bad input (missing path, not an image, wrong size or mode, empty folder, a
truncated file, a decompression bomb, more than MAX_PIXELS pixels) stops before
any model is loaded, with a message naming the file and the fix, and exit code
2. Sizes are checked from the file's header, before any pixel is decoded.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MODES = ("1", "L", "LA", "P", "RGB", "RGBA")
SIZE = 28
DEFAULT_MODEL = "models:/mnist-mlp@champion"
# Largest image --fit decodes (a 24-megapixel photo): decoding needs ~9 bytes a pixel.
MAX_PIXELS = 6000 * 4000


class InputError(ValueError):
    """An input cannot be classified; the message names the file and the fix."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.stages.predict",
        description="Classify handwritten-digit images (a file or a folder of them) with a registered model "
        "or a training checkpoint. Images must be 28x28 unless --fit; dark-on-light images are "
        "inverted to MNIST's light-on-dark.",
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="image file(s) and/or folder(s) of images")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--model",
        default=None,
        help=f"MLflow model URI (default: {DEFAULT_MODEL}), e.g. models:/mnist-cnn@champion, "
        "models:/mnist-mlp/2, runs:/<run_id>/model",
    )
    source.add_argument(
        "--checkpoint", default=None, type=Path, help="a training checkpoint (.ckpt) instead of a registered model"
    )
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store holding the model (default: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db)",
    )
    p.add_argument(
        "--fit",
        action="store_true",
        help="accept any size: crop to the digit, scale into 20x20, centre in 28x28 (as MNIST was made)",
    )
    p.add_argument("--top", type=int, default=1, help="also print the next most likely classes (default: 1)")
    return p.parse_args(argv)


def collect(inputs: list[str]) -> list[Path]:
    """Files to classify: each named file, and the image files of each named folder."""
    files: list[Path] = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            found = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in EXTENSIONS)
            if not found:
                raise InputError(f"{path}/ holds no images (looked for {', '.join(EXTENSIONS)}).")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path} does not exist.")
    return files


def _fit(pixels):
    """MNIST's normalisation: ink bounding box -> longer side 20 px -> 28x28 centred by centre of mass."""
    import numpy as np
    from PIL import Image

    ys, xs = np.nonzero(pixels > 0.1)
    if len(ys) == 0:
        raise InputError("no digit found (the image is blank after removing its background)")
    crop = pixels[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = (
        np.asarray(
            Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS), dtype=np.float32
        )
        / 255
    )
    frame = np.zeros((SIZE, SIZE), dtype=np.float32)
    total = small.sum()
    cy, cx = (
        ((np.indices(small.shape) * small).reshape(2, -1).sum(1) / total)
        if total > 0
        else (small.shape[0] / 2, small.shape[1] / 2)
    )
    top = int(round(SIZE / 2 - cy))  # noqa: RUF046 -- cy may be a numpy scalar
    left = int(round(SIZE / 2 - cx))  # noqa: RUF046
    top = min(max(top, 0), SIZE - small.shape[0])
    left = min(max(left, 0), SIZE - small.shape[1])
    frame[top : top + small.shape[0], left : left + small.shape[1]] = small
    return frame


def _decode_gray(path: Path, img, fit: bool):
    """Check mode and size from the header, then decode to float32 grayscale (memory stays bounded)."""
    import numpy as np
    from PIL import Image

    mode, (width, height) = img.mode, img.size
    if mode not in MODES:
        raise InputError(
            f"{path}: image mode {mode} is not supported; save it as an 8-bit grayscale "
            f"or RGB PNG (supported modes: {', '.join(MODES)})."
        )
    if not fit and (width, height) != (SIZE, SIZE):
        raise InputError(
            f"{path} is {width}x{height} pixels; expected {SIZE}x{SIZE} (MNIST's size). "
            f"Pass --fit to crop to the digit and scale it as MNIST was prepared."
        )
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{path} is {width}x{height} pixels, more than --fit accepts ({MAX_PIXELS:,} pixels); scale it down first."
        )
    img.load()
    if mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("LA", "RGBA"):
        paper = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, img.convert("RGBA"))
    return np.asarray(img.convert("L"), dtype=np.float32) / 255


def load_image(path: Path, fit: bool = False):
    """One image as float32 (28, 28) in [0, 1], light digit on dark background, as MNIST."""
    import warnings

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; a bomb is refused either way.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # reads the header only
                gray = _decode_gray(path, img, fit)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(
            f"{path} is not an image Pillow can read (expected PNG, JPEG, BMP, GIF, TIFF or WebP)."
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise InputError(
            f"{path} is refused as a decompression bomb ({err}). Scale it down below {MAX_PIXELS:,} pixels first."
        ) from err
    except MemoryError:
        raise InputError(f"{path} needs more memory to decode than is available; scale it down first.") from None
    except Exception as err:  # truncated or malformed data: decoders raise OSError, SyntaxError, EOFError, ...
        raise InputError(
            f"{path} could not be read as an image ({type(err).__name__}: {str(err)[:200]}); re-save it as PNG."
        ) from err
    ring = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    if np.median(ring) > 0.5:  # light background: pen on paper -> MNIST's light-on-dark
        gray = 1.0 - gray
    if fit:
        try:
            gray = _fit(gray)
        except InputError as err:
            raise InputError(f"{path}: {err}") from err
    return gray


def load_model(model_uri: str | None, checkpoint: Path | None, tracking_uri: str | None):
    """A callable mapping float tensors (N, 1, 28, 28) to logits (N, 10)."""
    if checkpoint is not None:
        from pipeline.nn.builders import load_checkpoint

        if not checkpoint.is_file():
            raise InputError(f"checkpoint {checkpoint} does not exist.")
        try:
            return load_checkpoint(checkpoint), str(checkpoint)
        except Exception as err:  # not a checkpoint, or one holding more than tensors (refused unread)
            raise InputError(
                f"{checkpoint} is not a training checkpoint of this pipeline "
                f"(loaded with weights_only=True): {type(err).__name__}: {str(err)[:200]}"
            ) from err
    from pipeline.tracking.client import check_store, resolve_uri
    from pipeline.tracking.registry import load_model as load_registered

    uri = resolve_uri(tracking_uri)
    check_store(uri)
    model_uri = model_uri or DEFAULT_MODEL
    try:
        model = load_registered(model_uri, uri)
    except Exception as err:  # MlflowException: unknown name, alias or version
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            f"cannot load {model_uri} from {uri}: {first}. List what is registered with "
            f"`python -m pipeline.stages.registry` (or pass --checkpoint)."
        ) from err
    return model, model_uri


def classify(model, images, top: int = 1):
    """[(classes, probabilities)] for a float array (N, 28, 28), best first."""
    import torch

    x = torch.from_numpy(images).float().unsqueeze(1)
    if hasattr(model, "eval"):
        with contextlib.suppress(Exception):  # exported graphs may refuse mode switches; already in inference form
            model.eval()
    with torch.no_grad():
        probs = model(x).softmax(1)
    p, c = probs.topk(max(1, min(top, probs.shape[1])), dim=1)
    return [(cs.tolist(), ps.tolist()) for cs, ps in zip(c, p, strict=False)]


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        files = collect(args.inputs)
        images = [load_image(f, args.fit) for f in files]
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import numpy as np

    try:
        model, source = load_model(args.model, args.checkpoint, args.tracking_uri)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results = []
    batch = np.stack(images)
    for i in range(0, len(batch), 1000):
        results.extend(classify(model, batch[i : i + 1000], args.top))
    print(f"# {len(files)} image(s), model {source}", file=sys.stderr)
    for path, (classes, probs) in zip(files, results, strict=False):
        rest = "".join(f", then {c} ({p:.3f})" for c, p in zip(classes[1:], probs[1:], strict=False))
        print(f"{path}: {classes[0]} (probability {probs[0]:.3f}){rest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
