"""Pictures a person opens: sample grids, the evolution strip, the latent walk, the confusion heatmap.

Inputs are uint8 images (n, 28, 28) in [0, 255] with ink = 255, as
`data.to_uint8` returns them; pictures are drawn black ink on white paper.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnistgan import outputs

_PAD = 2


def tile(images, columns, scale=2):
    """A grid of equally sized images as one uint8 (height, width) array, ink dark."""
    images = np.asarray(images, np.uint8)
    rows = -(-len(images) // columns)
    size = images.shape[1]
    cell = size + _PAD
    canvas = np.full((rows * cell + _PAD, columns * cell + _PAD), 255, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[_PAD + r * cell : _PAD + r * cell + size, _PAD + c * cell : _PAD + c * cell + size] = 255 - image
    return np.kron(canvas, np.ones((scale, scale), np.uint8))


def save_png(path, picture):
    """Saves a uint8 array or PIL image as PNG atomically."""
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    with outputs.atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def save_grid(path, images, columns=8, scale=3):
    """Saves uint8 images (n, 28, 28) as a grid, `columns` wide, scaled up."""
    save_png(path, tile(images, columns, scale))


def evolution_strip(steps, images, scale=2):
    """Columns left to right over training time, one row per fixed noise vector.

    Args:
      steps: int (k,), the training step of each snapshot.
      images: uint8 (k, rows, 28, 28), snapshot k of every row's noise vector.

    Returns:
      A PIL image with the step written above each column.
    """
    k, rows = images.shape[:2]
    grid = tile(np.transpose(images, (1, 0, 2, 3)).reshape(rows * k, 28, 28), columns=k, scale=scale)
    label_height = 14
    picture = Image.new("L", (grid.shape[1], grid.shape[0] + label_height), 255)
    picture.paste(Image.fromarray(grid), (0, label_height))
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    cell = (28 + _PAD) * scale
    for i, step in enumerate(steps):
        draw.text((_PAD * scale + i * cell, 1), str(int(step)), fill=0, font=font)
    return picture


def latent_walk_strip(frames, scale=2):
    """A walk through the generator's input space, one row per leg between two noise vectors.

    Args:
      frames: uint8 (legs, steps, 28, 28) in [0, 255]; each leg starts where the
        previous one ended, so the rows read on like lines of text.

    Returns:
      uint8 (height, width), ink dark.
    """
    legs, steps = frames.shape[:2]
    return tile(np.reshape(frames, (legs * steps, *frames.shape[2:])), columns=steps, scale=scale)


def pick_columns(count, limit):
    """Indices of at most `limit` snapshots spread evenly, first and last included."""
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def confusion_heatmap(matrix, title, cell=36):
    """A readable heatmap of a 10x10 confusion matrix (rows: true digit, columns: predicted).

    Each cell shows its count; shade is the share of its row, so errors stand
    out on any test-set size.
    """
    matrix = np.asarray(matrix, np.int64)
    n = matrix.shape[0]
    margin = 40
    size = margin + n * cell + 10
    picture = Image.new("RGB", (size, size + 20), "white")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    draw.text((margin, 4), title, fill="black", font=font)
    draw.text((2, margin + n * cell // 2), "true", fill="black", font=font)
    draw.text((margin + n * cell // 2 - 20, size + 4), "predicted", fill="black", font=font)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    for i in range(n):
        draw.text((margin - 12, margin + i * cell + cell // 2 - 5), str(i), fill="black", font=font)
        draw.text((margin + i * cell + cell // 2 - 3, margin - 14), str(i), fill="black", font=font)
        for j in range(n):
            # Diagonal in blue, errors in red, darker for larger shares.
            shade = int(255 * (1 - min(1.0, shares[i, j] if i == j else 10 * shares[i, j])))
            colour = (shade, shade, 255) if i == j else (255, shade, shade)
            box = (margin + j * cell, margin + i * cell, margin + (j + 1) * cell - 1, margin + (i + 1) * cell - 1)
            draw.rectangle(box, fill=colour, outline=(200, 200, 200))
            text_colour = "white" if shade < 110 else "black"
            draw.text((box[0] + 3, box[1] + cell // 2 - 5), str(matrix[i, j]), fill=text_colour, font=font)
    return picture
