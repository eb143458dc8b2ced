"""Peers of the image_segmentation workload: 8-connected component labelling
of {v > threshold} on the same uint8 images as the specs (the generators are
ported here bit for bit: splitmix64 noise, two-octave smooth value noise).

- CuPy, on the GPU: cupyx.scipy.ndimage.label with an all-ones 3 x 3
  structure, the threshold included in the timed body, timed like every peer
  (median_ms, CUDA events; CuPy and PyTorch share the legacy default stream,
  and label's returned count synchronises anyway).
- SciPy, on the CPU: scipy.ndimage.label, same structure, the threshold
  included, median of a few time.perf_counter() runs ("cpu": true).

Both number components in scan order, not by their smallest index as the
kernel does; for timing that is immaterial. Once, at the seed size, the CuPy
partition is checked against the kernel's reference: the same component count,
and CuPy's labels renumbered by smallest index have the reference's checksums
(the entry's "partition_matches")."""
import statistics
import time

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(seed, start, count):
    """Draws start .. start + count - 1 of tunekit's splitmix64 stream, as uniforms in [0, 1)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (np.arange(start + 1, start + count + 1, dtype=np.uint64) * GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def noise_image(width, height, seed=1):
    """init = { random = { seed, low = 0.0, high = 256.0 } } as uint8."""
    out = np.empty(width * height, dtype=np.uint8)
    chunk = 1 << 24
    for start in range(0, out.size, chunk):
        n = min(chunk, out.size - start)
        out[start:start + n] = np.floor(0.0 + 256.0 * _splitmix(seed, start, n)).astype(np.uint8)
    return out.reshape(height, width)


def blob_image(width, height, seed=1, scale=32.0):
    """init = { blobs = { seed, scale, width } } as uint8: the same operations in the same order.
    Along a row the horizontal blend of lattice rows r and r + 1 (the generator's `top` and
    `bottom`) depends on x alone, so it is computed once per lattice row."""
    def smooth(t):
        return t * t * (3.0 - 2.0 * t)

    xs = np.arange(width, dtype=np.float64)
    octaves = []
    for each in (scale, scale / 4.0):
        columns = int(width / each) + 2
        rows = int(height / each) + 2
        lattice = _splitmix(seed, 0, columns * rows).reshape(rows, columns)
        seed += 1
        u = xs / each
        column = u.astype(np.int64)
        s = smooth(u - column)
        left = lattice[:, column]
        blended = left + s * (lattice[:, column + 1] - left)  # rows x width
        octaves.append((each, blended))

    out = np.empty((height, width), dtype=np.uint8)
    step = 256
    for y0 in range(0, height, step):
        ys = np.arange(y0, min(height, y0 + step), dtype=np.float64)
        total = []
        for each, blended in octaves:
            v = ys / each
            row = v.astype(np.int64)
            t = smooth(v - row)[:, None]
            top = blended[row]
            bottom = blended[row + 1]
            total.append(top + t * (bottom - top))
        value = (total[0] + 0.25 * total[1]) / 1.25
        out[y0:y0 + len(ys)] = np.floor(255.0 * value).astype(np.uint8)
    return out


# The specs: (kernel name, width = height, threshold, image).
CASES = [
    ("image_segmentation", 256, 100, "noise"),
    ("image_segmentation", 8192, 128, "blobs"),
    ("image_segmentation", 16384, 128, "blobs"),
    ("image_segmentation", 8192, 128, "noise"),
]
# The reference's labelling of the seed image (kernels/image_segmentation/reference.cpp):
# components, sum of labels, sum of label * (i % 1000 + 1) over linear indices i.
SEED_COUNT, SEED_SUM, SEED_WEIGHTED_SUM = 39, 1941825, 1016492029


def _min_index_labels(scan_labels, count):
    """Scan-order labels (0 background) renumbered as 1 + the smallest linear index of each component."""
    flat = scan_labels.ravel()
    index = np.arange(flat.size, dtype=np.int64)
    smallest = np.full(count + 1, flat.size, dtype=np.int64)
    np.minimum.at(smallest, flat, index)
    return np.where(flat > 0, smallest[flat] + 1, 0)


def peers(median_ms):
    import cupy
    import cupyx.scipy.ndimage as gpu_ndimage
    import scipy.ndimage as cpu_ndimage

    structure = np.ones((3, 3), dtype=bool)  # label takes it as NumPy (a CuPy one is copied back)
    entries = []
    for name, size, threshold, kind in CASES:
        image = noise_image(size, size) if kind == "noise" else blob_image(size, size)
        keys = {"name": name, "width": size, "height": size, "threshold": threshold, "image": kind,
                "blob_scale": 0 if kind == "noise" else 32}
        device_image = cupy.asarray(image)
        cupy.cuda.Device().synchronize()
        entry = dict(keys, peer="cupyx.scipy.ndimage.label (8-connected, threshold included)",
                     median_ms=median_ms(lambda: gpu_ndimage.label(device_image > threshold,
                                                                   structure=structure)))
        labels, count = gpu_ndimage.label(device_image > threshold, structure=structure)
        entry["components"] = int(count)
        if size == 256:
            ours = _min_index_labels(cupy.asnumpy(labels).astype(np.int64), int(count))
            weights = np.arange(ours.size, dtype=np.int64) % 1000 + 1
            entry["partition_matches"] = bool(int(count) == SEED_COUNT and int(ours.sum()) == SEED_SUM and
                                              int((ours * weights).sum()) == SEED_WEIGHTED_SUM)
        entry["Gpixel_per_s"] = size * size / (entry["median_ms"] * 1e6)
        entries.append(entry)
        del labels, device_image
        cupy.get_default_memory_pool().free_all_blocks()

        times = []
        for _ in range(3 if size <= 8192 else 2):
            start = time.perf_counter()
            cpu_ndimage.label(image > threshold, structure=structure)
            times.append((time.perf_counter() - start) * 1e3)
        entries.append(dict(keys, peer="scipy.ndimage.label (CPU, 8-connected, threshold included)", cpu=True,
                            median_ms=statistics.median(times),
                            Gpixel_per_s=size * size / (statistics.median(times) * 1e6)))
    return entries
