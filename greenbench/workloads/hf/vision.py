"""The hf-vision workload: an image classifier scored by top-1 accuracy.

Models come from transformers (AutoModelForImageClassification + AutoImageProcessor), timm
(``timm.create_model``) or torchvision (``torchvision.models.get_model``). Images are read and
preprocessed once at build time into a host tensor; the timed batch is staged on the device in
advance. Data: an image folder (one sub-folder per class), a `datasets` split, or synthetic
seeded random images with random labels (for speed and energy only: accuracy is chance).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from greenbench.measure.zoo import HFDataset, HFModel
from greenbench.workloads.base import Score, WorkloadError, WorkloadSkipped
from greenbench.workloads.hf.base import HFWorkload, batch_size_arg, count_top1, logits_of, repeat_to
from greenbench.workloads.hf.common import Note, one_line, require, version
from greenbench.workloads.hf.data import class_names, hub_dataset, local_dataset
from greenbench.workloads.hf.hub import FIX_HUB, check_available, hub_load, hub_offline, is_hub_miss, label
from greenbench.workloads.hf.labels import (
    generic_labels,
    is_int_like,
    label_index,
    label_key,
    map_class_labels,
    map_labels,
)
from greenbench.workloads.hf.loading import (
    INIT_SEED,
    Loaded,
    check_precision,
    compute_dtype,
    count_params,
    load_transformers_model,
    place,
    probe,
    resolve_device,
    warn_remote_code,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
SYNTHETIC_SIZE = 128
DEFAULT_IMAGE_SIZE = 224
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CHUNK = 64  # images preprocessed at a time: bounds the peak host memory of PIL + float copies
SORTED_ORDER = "sorted folder order"


class VisionWorkload(HFWorkload):
    def __init__(self, name: str, loaded: Loaded, pixels: torch.Tensor, labels: torch.Tensor,
                 precision: str, device: torch.device, provenance: dict[str, Any]) -> None:
        super().__init__(name, loaded.model, loaded.params, precision, device, provenance)
        self._pixels: torch.Tensor | None = pixels  # host, float32: batches are cast on the device
        self._labels: torch.Tensor | None = labels
        self._in_dtype = input_dtype(precision, device)

    def _batch(self, start: int, stop: int) -> torch.Tensor:
        assert self._pixels is not None
        return self._pixels[start:stop].to(device=self._device, dtype=self._in_dtype)

    def make_step(self, batch_size: int) -> Callable[[], Any]:
        model = self._live()
        b = batch_size_arg(batch_size)
        assert self._pixels is not None
        staged = repeat_to(self._pixels, b).to(device=self._device, dtype=self._in_dtype)

        @torch.inference_mode()
        def step() -> Any:
            return model(staged)

        return step

    def evaluate(self, batch_size: int) -> Score:
        model = self._live()
        b = batch_size_arg(batch_size)
        assert self._labels is not None
        correct = count_top1(lambda i, j: logits_of(model(self._batch(i, j))),
                                self._labels, b, self._device)
        return Score(correct=correct, total=len(self._labels))

    def _drop(self) -> None:
        self._pixels = self._labels = None


def input_dtype(precision: str, device: torch.device) -> torch.dtype:
    return compute_dtype(precision, device)


# ------------------------------------------------------------------------------------ data


class Images:
    """Evaluation images before preprocessing: a loader per item, and each item's label (a class
    folder's name, a `datasets` label, or None when synthetic)."""

    def __init__(self, n: int, load: Callable[[int], Any], labels: list[Any] | None, provenance: dict[str, Any],
                 where: str, classes: list[str] | None = None, names: list[str] | None = None) -> None:
        self.n, self.load, self.labels, self.provenance, self.where = n, load, labels, provenance, where
        self.classes = classes  # an image folder's class sub-folders, sorted
        self.names = names  # a `datasets` ClassLabel's names

    def num_classes(self) -> int | None:
        """How many classes a fresh (random) head needs for this data."""
        if self.classes is not None:
            return len(self.classes)
        if self.names:
            return len(self.names)
        if self.labels and all(is_int_like(v) for v in self.labels):
            return max(int(v) for v in self.labels) + 1
        return len(set(map(str, self.labels))) if self.labels else None


def _open_image(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise WorkloadError(f"dataset image {path}: not a readable image ({one_line(e)})") from None


def _folder(ds: HFDataset, on_note: Note) -> Images:
    path, prov = local_dataset(ds)
    if not path.is_dir():
        raise WorkloadError(f"dataset {path}: hf-vision reads an image folder (one sub-folder per class), "
                            "not a file")
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise WorkloadError(f"dataset {path}: no class sub-folders (expected one sub-folder of images per class)")
    files = [sorted(f for f in (path / c).iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
             for c in classes]
    if not any(files):
        raise WorkloadError(f"dataset {path}: no images ({', '.join(IMAGE_SUFFIXES)}) in its class sub-folders")
    empty = [c for c, fs in zip(classes, files, strict=True) if not fs]
    if empty and on_note:
        on_note(f"dataset {path}: class folder(s) {empty[:4]} hold no images (kept in the class order)")
    # Interleave the classes, so that a 'limit' keeps them balanced.
    items = [(fs[k], ci) for k in range(max(map(len, files))) for ci, fs in enumerate(files) if k < len(fs)]
    if ds.limit is not None:
        items = items[:ds.limit]
    prov.update(classes=len(classes), class_names=classes[:50], items=len(items), limit=ds.limit)
    return Images(len(items), lambda i: _open_image(items[i][0]), [classes[ci] for _, ci in items],
                  prov, str(path), classes=classes)


def _hub(ds: HFDataset, allow_download: bool) -> Images:
    data, prov = hub_dataset(ds, allow_download, (ds.image_column, ds.label_column))
    images, labels = data[ds.image_column] if len(data) <= CHUNK else None, list(data[ds.label_column])

    def load(i: int) -> Any:
        im = images[i] if images is not None else data[i][ds.image_column]
        if not hasattr(im, "convert"):
            raise WorkloadError(f"dataset {ds.id}: column {ds.image_column!r} does not hold images")
        return im.convert("RGB")

    names = class_names(data, ds.label_column)
    prov.update(items=len(data), image_column=ds.image_column, label_column=ds.label_column, limit=ds.limit)
    return Images(len(data), load, labels, prov, f"{ds.id} {ds.split}", names=names)


def _synthetic(ds: HFDataset, size: int) -> Images:
    from PIL import Image

    n = ds.size or SYNTHETIC_SIZE
    rng = np.random.default_rng(ds.seed)
    arrays = [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(n)]
    prov = {"synthetic": True, "seed": ds.seed, "items": n, "image_size": size,
            "note": "seeded random images with random labels: accuracy is chance"}
    return Images(n, lambda i: Image.fromarray(arrays[i]), None, prov, "synthetic")


# ------------------------------------------------------------------------------ preprocessing


def _manual(size: int) -> Callable[[list], torch.Tensor]:
    """No image processor (random weights from a config): resize to a square, ImageNet mean/std."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def run(images: list) -> torch.Tensor:
        from PIL import Image

        bilinear = Image.Resampling.BILINEAR
        arr = np.stack([np.asarray(im.resize((size, size), bilinear), dtype=np.float32) for im in images])
        x = torch.from_numpy(arr).permute(0, 3, 1, 2) / 255.0
        return (x - mean) / std

    return run


def _size_keys(processor: Any) -> dict[str, Any]:
    size = getattr(processor, "size", None) or {}
    if not isinstance(size, dict):  # transformers 5: a SizeDict with attributes
        size = {k: getattr(size, k, None) for k in ("height", "width", "shortest_edge", "longest_edge")}
    return {k: v for k, v in size.items() if v is not None}


def _processor_fn(processor: Any, image_size: int | None) -> tuple[Callable[[list], torch.Tensor], int]:
    """The processor as a batch function, with an ``image_size`` override; and its output side."""
    keys = _size_keys(processor)
    override: dict[str, Any] = {}
    if image_size is not None:
        if "height" in keys or "width" in keys:
            override["size"] = {"height": image_size, "width": image_size}
        else:
            override["size"] = {"shortest_edge": image_size}
        if getattr(processor, "crop_size", None) is not None:
            override["crop_size"] = {"height": image_size, "width": image_size}

    def run(images: list) -> torch.Tensor:
        return processor(images=images, return_tensors="pt", **override)["pixel_values"]

    side = image_size or keys.get("height") or keys.get("shortest_edge") or DEFAULT_IMAGE_SIZE
    return run, int(side)


def _stack_fn(transform: Callable) -> Callable[[list], torch.Tensor]:
    return lambda images: torch.stack([transform(im) for im in images])


def _preprocess(images: Images, fn: Callable[[list], torch.Tensor], on_note: Note) -> torch.Tensor:
    chunks = []
    for start in range(0, images.n, CHUNK):
        batch = [images.load(i) for i in range(start, min(start + CHUNK, images.n))]
        try:
            chunks.append(fn(batch).to(torch.float32))
        except WorkloadError:
            raise
        except Exception as e:  # a processor that rejects these images: one line, not a traceback
            raise WorkloadError(f"dataset {images.where}: preprocessing failed: "
                                f"{type(e).__name__}: {one_line(e)}") from None
    pixels = torch.cat(chunks)
    gib = pixels.numel() * 4 / 2**30
    if gib > 2 and on_note:
        on_note(f"preprocessed images take {gib:.1f} GiB of host memory; set the dataset's 'limit' to use fewer")
    return pixels


# ---------------------------------------------------------------------------------- models


def _transformers(ref: HFModel, images_fn: Callable[[int | None], Images], precision: str, dev: torch.device,
                  image_size: int | None, allow_download: bool, trust_remote_code: bool, on_note: Note):
    from transformers import AutoImageProcessor

    check_available("model", ref.id, ref.revision, allow_download)
    proc_id = ref.tokenizer or ref.id
    processor, proc_prov = None, None
    if proc_id is not None:
        try:
            processor, proc_prov = hub_load(
                "image processor", proc_id, ref.revision if proc_id == ref.id else None,
                AutoImageProcessor.from_pretrained, allow_download=allow_download,
                trust_remote_code=trust_remote_code, cache_files=("preprocessor_config.json", "config.json"))
        except WorkloadSkipped:
            raise
        except WorkloadError:
            if ref.weights == "pretrained" or ref.tokenizer is not None:
                raise
            processor = None  # random weights on a hub architecture that ships no processor
    fn, side = _processor_fn(processor, image_size) if processor is not None else (None, None)
    if fn is None:
        side = image_size or int((ref.config or {}).get("image_size") or DEFAULT_IMAGE_SIZE)
        fn = _manual(side)
        proc_prov = {"id": None, "note": f"no image processor: resize to {side}x{side}, ImageNet mean/std"}
    images = images_fn(side)
    defaults: dict[str, Any] = {}
    cfg = ref.config or {}
    if ref.weights == "random":
        if images.classes and not {"num_labels", "id2label"} & set(cfg):
            defaults.update(id2label=dict(enumerate(images.classes)),
                            label2id={c: i for i, c in enumerate(images.classes)})
        elif images.labels is not None and not {"num_labels", "id2label"} & set(cfg):
            defaults["num_labels"] = images.num_classes()
        if image_size is not None and "image_size" not in cfg:
            defaults["image_size"] = image_size
    loaded = load_transformers_model("AutoModelForImageClassification", ref, precision, dev,
                                        allow_download=allow_download, trust_remote_code=trust_remote_code,
                                        on_note=on_note, config_defaults=defaults)
    return loaded, fn, images, {"processor": proc_prov}


def _timm(ref: HFModel, images_fn: Callable[[int | None], Images], precision: str, dev: torch.device,
          image_size: int | None, allow_download: bool, on_note: Note):
    timm = require("timm", "source timm")
    pretrained = ref.weights == "pretrained"
    kwargs = dict(ref.config or {})
    what = label("model", ref.id, ref.revision)
    images = None
    if not pretrained and "num_classes" not in kwargs:
        images = images_fn(image_size or DEFAULT_IMAGE_SIZE)
        if images.num_classes():
            kwargs["num_classes"] = images.num_classes()
    try:
        with hub_offline(not allow_download), torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            model = timm.create_model(ref.id, pretrained=pretrained, **kwargs)
    except RuntimeError as e:
        if "unknown model" in str(e).lower():
            raise WorkloadError(f"{what}: timm does not know this model ({one_line(e)})") from None
        raise WorkloadError(f"{what}: cannot load: {one_line(e)}") from None
    except Exception as e:
        if is_hub_miss(e) or isinstance(e, (OSError, ConnectionError)):
            how = "is not in the Hugging Face cache and downloads are off" if not allow_download \
                else f"could not be downloaded ({one_line(e)})"
            raise WorkloadSkipped(f"{what} (timm) {how}; {FIX_HUB}") from None
        raise WorkloadError(f"{what}: cannot load: {type(e).__name__}: {one_line(e)}") from None
    data_config = timm.data.resolve_model_data_config(model)
    if image_size is not None:
        data_config["input_size"] = (3, image_size, image_size)
    fn = _stack_fn(timm.data.create_transform(**data_config, is_training=False))
    if images is None:
        images = images_fn(int(data_config["input_size"][-1]))
    prov = {"source": "timm", "id": ref.id, "weights": ref.weights, "timm": version("timm"),
            "pretrained_cfg": getattr(model, "pretrained_cfg", {}).get("hf_hub_id") if pretrained else None,
            **({"config": kwargs} if kwargs else {}), **({} if pretrained else {"init_seed": INIT_SEED})}
    return _finish_plain(model, precision, dev, prov, on_note), fn, images, {
        "processor": {"timm_data_config": {k: str(v) for k, v in data_config.items()}}}


def _torchvision(ref: HFModel, images_fn: Callable[[int | None], Images], precision: str, dev: torch.device,
                 image_size: int | None, allow_download: bool, on_note: Note):
    tv = require("torchvision", "source torchvision")
    what = label("model", ref.id, ref.revision)
    weights = None
    if ref.weights == "pretrained":
        try:
            enum = tv.models.get_model_weights(ref.id)
        except (ValueError, KeyError) as e:
            raise WorkloadError(f"{what}: torchvision does not know this model ({one_line(e)})") from None
        tag = ref.revision or "DEFAULT"
        try:
            weights = enum[tag]
        except KeyError:
            raise WorkloadError(f"{what}: no torchvision weights {tag!r} (known: DEFAULT, "
                                f"{', '.join(w.name for w in enum)})") from None
        from urllib.parse import urlparse

        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
        if not cached.exists() and not allow_download:
            raise WorkloadSkipped(f"{what} weights {weights.name} are not in the torch hub cache ({cached}) "
                                  f"and downloads are off; {FIX_HUB}")
    kwargs = dict(ref.config or {})
    images = None
    if weights is None and "num_classes" not in kwargs:
        images = images_fn(image_size or DEFAULT_IMAGE_SIZE)
        if images.num_classes():
            kwargs["num_classes"] = images.num_classes()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            model = tv.models.get_model(ref.id, weights=weights, **kwargs)
    except (OSError, ConnectionError) as e:
        raise WorkloadSkipped(f"{what} weights could not be downloaded ({one_line(e)}); {FIX_HUB}") from None
    except (ValueError, TypeError, RuntimeError) as e:
        raise WorkloadError(f"{what}: cannot build: {one_line(e)}") from None
    if weights is not None:
        t = weights.transforms(crop_size=image_size, resize_size=image_size) if image_size else weights.transforms()
        fn, side = _stack_fn(t), image_size or int(getattr(t, "crop_size", [DEFAULT_IMAGE_SIZE])[0])
    else:
        side = image_size or DEFAULT_IMAGE_SIZE
        fn = _manual(side)
    if images is None:
        images = images_fn(side)
    prov = {"source": "torchvision", "id": ref.id, "weights": ref.weights, "torchvision": version("torchvision"),
            "weights_tag": str(weights) if weights is not None else None,
            **({"config": kwargs} if kwargs else {}), **({} if weights else {"init_seed": INIT_SEED})}
    preprocessing = "weights.transforms()" if weights is not None else f"resize {side}x{side}, ImageNet mean/std"
    return _finish_plain(model, precision, dev, prov, on_note), fn, images, {"processor": {"note": preprocessing}}


def _finish_plain(model: Any, precision: str, dev: torch.device, prov: dict[str, Any], on_note: Note) -> Loaded:
    """A timm or torchvision module: cast, count, place (as load_transformers_model does)."""
    if precision == "int8" and dev.type == "cuda":
        raise WorkloadSkipped(f"int8 on CUDA goes through transformers + bitsandbytes; {prov['source']} "
                              "models are measured at fp32, bf16 or fp16 there")
    model = model.to(dtype=compute_dtype(precision, dev)).eval()
    params = count_params(model)
    return Loaded(model=place(model, precision, dev, prov, on_note), params=params, provenance=prov)


# ---------------------------------------------------------------------------------- labels


def _label_ids(images: Images, loaded: Loaded, source: str, weights: str, num_out: int,
               on_note: Note) -> tuple[list[int], str]:
    id2label = getattr(loaded.config, "id2label", None) or {}
    named_head = source == "transformers" and weights == "pretrained" and bool(id2label) \
        and not generic_labels(id2label)
    labels = images.labels or []
    if images.classes is not None:  # an image folder: match its sub-folder names, or take them in order
        if named_head:
            index = label_index(id2label)
            unknown = [c for c in images.classes if label_key(c) not in index]
            if unknown:
                shown = ", ".join(repr(str(v)) for v in list(id2label.values())[:4])
                raise WorkloadError(f"dataset {images.where}: class folder(s) {unknown[:5]} match none of the "
                                    f"model's labels ({shown}, ...); rename the folders to the model's label names")
            return [index[label_key(c)] for c in labels], "by name (model id2label)"
        if source == "transformers" and weights == "pretrained" and on_note:
            on_note(f"model {loaded.provenance.get('id')} has no label names; classes taken in sorted folder order")
        order = {c: i for i, c in enumerate(images.classes)}
        return [order[c] for c in labels], SORTED_ORDER
    if all(is_int_like(v) for v in labels):  # a `datasets` split with integer labels
        ints = [int(v) for v in labels]
        if named_head:
            return map_class_labels(ints, images.names, id2label, num_out, images.where, on_note)
        return map_labels(ints, {}, num_out, images.where)
    if named_head:
        return map_labels(labels, id2label, num_out, images.where)
    order = {c: i for i, c in enumerate(sorted(set(map(str, labels))))}
    return [order[str(v)] for v in labels], "sorted label names"


def build_hf_vision(
    model: HFModel,
    dataset: HFDataset,
    precision: str,
    device: str,
    cache_dir: Path,
    on_note: Note = None,
    *,
    image_size: int | None,
    trust_remote_code: bool,
    allow_download: bool = False,
    on_warning: Note = None,
) -> VisionWorkload:
    """Build an image classifier (transformers, timm or torchvision) at ``precision`` on ``device``,
    scored by top-1 accuracy on an image folder, a `datasets` split, or synthetic images.

    ``model``, ``dataset``, ``image_size`` (None: the processor's) and ``trust_remote_code`` are the
    ladder's, as the zoo validated them (``VisionLadder.builder_kwargs``)."""
    ref, ds = model, dataset
    dev = resolve_device(device)
    check_precision(precision, dev)
    if ds.format != "classification":
        raise WorkloadError(f"hf-vision needs dataset format 'classification', not {ds.format!r}")
    if image_size is not None and image_size < 8:  # the zoo takes any positive size
        raise WorkloadError(f"image_size must be an integer of at least 8, got {image_size!r}")

    def images_fn(side: int | None) -> Images:
        if ds.synthetic:
            return _synthetic(ds, side or DEFAULT_IMAGE_SIZE)
        if ds.path is not None:
            return _folder(ds, on_note)
        return _hub(ds, allow_download)

    if ref.source == "transformers":
        warn_remote_code(ref, trust_remote_code, on_warning)
        loaded, fn, images, extra = _transformers(ref, images_fn, precision, dev, image_size,
                                                  allow_download, trust_remote_code, on_note)
    elif ref.source == "timm":
        loaded, fn, images, extra = _timm(ref, images_fn, precision, dev, image_size, allow_download, on_note)
    else:
        loaded, fn, images, extra = _torchvision(ref, images_fn, precision, dev, image_size, allow_download, on_note)

    pixels = _preprocess(images, fn, on_note)
    model_ = loaded.model
    out = probe(lambda: model_(pixels[:2].to(device=dev, dtype=input_dtype(precision, dev))), precision, dev, ref.name)
    logits = logits_of(out)
    if logits.ndim != 2:
        raise WorkloadError(f"model {ref.name!r} gave output shape {tuple(logits.shape)}, not (batch, classes)")
    num_out = int(logits.shape[-1])
    if images.labels is None:  # synthetic
        gen = torch.Generator().manual_seed(ds.seed)
        labels = torch.randint(0, num_out, (images.n,), generator=gen)
        how = "random"
    else:
        if images.classes is not None and len(images.classes) > num_out:
            raise WorkloadError(f"dataset {images.where} has {len(images.classes)} classes but model "
                                f"{ref.name!r} outputs {num_out}")
        ids, how = _label_ids(images, loaded, ref.source, ref.weights, num_out, on_note)
        labels = torch.tensor(ids, dtype=torch.long)
    data_prov = {**images.provenance, "label_mapping": how}
    prov = {"model": loaded.provenance, **extra, "dataset": data_prov, "image_shape": list(pixels.shape[1:]),
            "trust_remote_code": bool(trust_remote_code), "precision": precision, "device": str(dev)}
    return VisionWorkload(ref.name, loaded, pixels, labels, precision, dev, prov)
