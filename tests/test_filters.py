"""The layer figures every run draws: what goes in them and where each tile lands."""

from __future__ import annotations

import math

import matplotlib.image
import numpy as np
import pytest
import torch

from pipeline.common import plots
from pipeline.nn import filters
from pipeline.nn.models import CNN, MLP, SmallConv


def test_mosaic_puts_tile_i_at_its_row_and_column_with_blank_gaps():
    tiles = np.stack([np.full((3, 2), float(i)) for i in range(5)])
    out = plots._mosaic(tiles, cols=3, gap=1)
    assert out.shape == (2 * 3 + 1, 3 * 2 + 2)
    for i in range(5):
        r, c = divmod(i, 3)
        assert (out[r * 4 : r * 4 + 3, c * 3 : c * 3 + 2] == i).all()
    assert np.isnan(out[3]).all()  # the gap row between the two rows of tiles
    assert np.isnan(out[:, 2]).all() and np.isnan(out[:, 5]).all()  # the gap columns
    assert np.isnan(out[4:, 6:]).all()  # the sixth slot has no tile


def test_first_layer_weights_are_pictures_of_the_first_layer():
    mlp = MLP(hidden=(16, 8))
    assert torch.equal(filters.first_layer_weights(mlp), mlp.linear_layers()[0].weight.detach().reshape(16, 28, 28))
    assert filters.first_layer_weights(CNN()).shape[1:] == (3, 3)
    assert filters.first_layer_weights(SmallConv()).shape[0] == 16


def test_top_activating_picks_the_images_that_drive_each_unit_hardest():
    torch.manual_seed(0)
    model = MLP(hidden=(16, 8)).eval()
    images = (torch.rand(300, 28, 28) * 255).to(torch.uint8)
    chosen, picks = filters.top_activating(model, images, units=3, per_unit=4, batch_size=128)
    acts = []
    hook = filters.deep_units(model).register_forward_hook(lambda m, i, o: acts.append(o.detach()))
    with torch.no_grad():
        model(images.float().div(255).unsqueeze(1))
    hook.remove()
    acts = acts[0]
    assert picks.shape == (3, 4)
    for unit, row in zip(chosen, picks, strict=True):
        assert acts[row, unit].min() >= acts[:, unit].topk(4).values.min() - 1e-6


def test_write_figures_draws_both_pictures_for_a_network_with_hidden_layers(tmp_path):
    torch.manual_seed(0)
    images = (torch.rand(200, 28, 28) * 255).to(torch.uint8)
    paths = filters.write_figures(MLP(hidden=(128, 64)), images, tmp_path)
    assert [p.name for p in paths] == ["filters_layer1.png", "filters_deep.png"]
    layer1 = matplotlib.image.imread(paths[0])
    assert layer1.shape[1] > layer1.shape[0] > 100  # 64 filters, 16 to a row: wider than tall
    assert sorted(p.name for p in tmp_path.iterdir()) == ["filters_deep.png", "filters_layer1.png"]  # no temp files


def test_a_single_linear_layer_has_no_filters_to_show(tmp_path):
    assert filters.write_figures(MLP(hidden=()), torch.zeros(10, 28, 28, dtype=torch.uint8), tmp_path) == []


@pytest.mark.parametrize("n", [1, 16, 17, 64])
def test_filters_png_lays_out_any_number_of_filters(tmp_path, n):
    path = plots.filters_png(torch.randn(n, 5, 5), tmp_path / "f.png", "title")
    assert path.is_file()
    rows = math.ceil(n / 16)
    assert matplotlib.image.imread(path).shape[0] >= rows * 0.75 * 100  # figure height follows the rows
