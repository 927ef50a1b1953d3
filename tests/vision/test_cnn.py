"""The CNN model through cv2.dnn: input normalisation, canonical patches, loading."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from occupancy.vision.cnn import CnnModel, standardise
from occupancy.vision.detector import DEFAULT_DETECTOR, Detector, load_model
from occupancy.vision.errors import ModelError
from occupancy.vision.layout import Layout, Space
from occupancy.vision.model import DEFAULT_MODEL, LogisticModel
from occupancy.vision.rectify import PatchSpec, plan_warps, quad_of, rectify


@pytest.fixture(scope="module")
def cnn() -> CnnModel:
    model = load_model(DEFAULT_DETECTOR)
    assert isinstance(model, CnnModel)
    return model


def test_standardise_ignores_gain_and_colour_cast() -> None:
    rng = np.random.default_rng(4)
    patches = rng.integers(40, 120, (3, 32, 64, 3)).astype(np.uint8)
    base = standardise(patches)
    assert base.shape == (3, 3, 32, 64)
    assert np.allclose(base.mean(axis=(2, 3)), 0, atol=1e-5)
    # a colour cast (per-channel offset) is removed exactly
    cast = (patches.astype(np.int32) + np.array([10, 0, 25])).astype(np.uint8)
    assert np.allclose(standardise(cast), base, atol=1e-5)
    # a gain of 2 is removed up to the contrast floor (a few per cent here)
    brighter = (patches.astype(np.int32) * 2).astype(np.uint8)
    assert np.allclose(standardise(brighter), base, rtol=0.1, atol=1e-3)


def test_flat_patch_is_not_amplified() -> None:
    flat = np.full((1, 32, 64, 3), 128, dtype=np.uint8)
    flat[0, 10, 10] = 130
    assert float(np.abs(standardise(flat)).max()) < 1.0


def test_contour_start_and_direction_give_the_same_quad() -> None:
    corners = ((20.0, 30.0), (110.0, 40.0), (105.0, 80.0), (25.0, 75.0))
    reference = quad_of(Space("a", corners))
    for shift in range(4):
        for polygon in (corners[shift:] + corners[:shift], (corners[shift:] + corners[:shift])[::-1]):
            assert np.array_equal(quad_of(Space("a", polygon)), reference)
    assert reference[0].tolist() == [20.0, 30.0]  # top long side first, clockwise on screen


def test_margin_puts_the_polygon_inside_the_patch() -> None:
    frame = np.zeros((100, 200, 3), dtype=np.uint8)
    frame[40:60, 50:150] = 255  # the space: a white 100×20 box on black
    layout = Layout((Space("a", ((50.0, 40.0), (149.0, 40.0), (149.0, 59.0), (50.0, 59.0))),))
    (patch,) = rectify(frame, plan_warps(layout, PatchSpec(64, 32, (0.25, 0.25))))
    grey = patch[:, :, 0]
    assert grey[16, 32] > 250  # centre inside
    assert grey[1, 32] < 5 and grey[16, 1] < 5  # context outside
    assert grey[16, 12] > 250 and grey[16, 51] > 250  # polygon spans the inner 2/3
    assert grey[16, 8] < 5 and grey[16, 55] < 5


def test_cnn_scores_are_invariant_to_contour_order(cnn: CnnModel) -> None:
    detector = Detector(cnn)
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 255, (120, 200, 3), dtype=np.uint8)
    corners = ((20.0, 30.0), (110.0, 40.0), (105.0, 80.0), (25.0, 75.0))
    orders = [corners, corners[1:] + corners[:1], corners[::-1], corners[2:] + corners[:2]]
    p = detector.probabilities(frame, Layout(tuple(Space(str(i), c) for i, c in enumerate(orders))))
    assert np.allclose(p, p[0], atol=1e-6)


def test_optional_turn_average_is_exact(cnn: CnnModel) -> None:
    rng = np.random.default_rng(5)
    patches = rng.integers(0, 255, (4, cnn.spec.height, cnn.spec.width, 3), dtype=np.uint8)
    turned = np.ascontiguousarray(patches[:, ::-1, ::-1])
    averaged = replace(cnn, flips=True)
    assert np.allclose(averaged.logits(patches), averaged.logits(turned), atol=1e-4)
    assert cnn.logits(patches[:0]).shape == (0,)


def test_both_model_kinds_load(cnn: CnnModel) -> None:
    assert Detector.load().spec == cnn.spec
    texture = Detector.load(DEFAULT_MODEL)
    assert isinstance(texture.model, LogisticModel)
    assert texture.spec.margin == (0.0, 0.0)


def test_bad_model_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        load_model(tmp_path / "missing.json")
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"kind": "forest"}))
    with pytest.raises(ModelError):
        load_model(odd)
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps({"kind": "cnn", "onnx": "nowhere.onnx", "patch": [64, 32], "margin": [0, 0]})
    )
    with pytest.raises(ModelError):
        load_model(broken)
    (tmp_path / "garbage.onnx").write_bytes(b"not a network")
    broken.write_text(
        json.dumps({"kind": "cnn", "onnx": "garbage.onnx", "patch": [64, 32], "margin": [0, 0]})
    )
    with pytest.raises(ModelError):
        load_model(broken)
    broken.write_text(json.dumps({"kind": "cnn", "patch": [64]}))
    with pytest.raises(ModelError):
        CnnModel.load(broken)


def test_a_flat_or_clipped_patch_is_not_a_car(cnn: CnnModel) -> None:
    """A white-out, a black border or one colour is no car: the shipped network answers free at
    the shipped operating point (a network trained without such patches said 0.59: occupied),
    and an empty bay half under glare is at least not occupied (measured 0.054 and 0.169)."""
    height, width = cnn.spec.height, cnn.spec.width
    point = Detector.load().operating
    colours = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (30, 90, 200), (200, 200, 210)]
    flat = [np.full((height, width, 3), c, dtype=np.uint8) for c in colours]
    rng = np.random.default_rng(4)
    asphalt = rng.normal(100, 12, (height, width, 3))
    asphalt[:, [width // 7, width - width // 7]] = 230  # the bay's painted lines
    flat.append(np.clip(asphalt * 0.03, 0, 255).astype(np.uint8))  # crushed to black
    assert (cnn.probability_of_patches(np.stack(flat)) < point.free_below).all()
    glare = np.linspace(1.0, 6.0, width)[None, :, None]  # sun glare over half the bay: clipped white
    (p,) = cnn.probability_of_patches(np.clip(asphalt * glare, 0, 255).astype(np.uint8)[None])
    assert p < point.occupied_from
