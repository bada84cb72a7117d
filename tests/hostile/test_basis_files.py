"""Basis files from strangers: damaged, deeply nested or zip-bomb files are refused unread, and a basis binds
to the model it was fitted on."""

from __future__ import annotations

import json
import re
import shutil
import zipfile

import numpy as np
import onnx
import pytest

from pfv_onnx import PFV, Featurizer, PFVError, export
from pfv_onnx.analyses.basis.file import load_basis
from pfv_onnx.cli import main
from pfv_onnx.graph import reinitialise
from pfv_onnx.images import bundled

from helpers.basis import write_basis
from helpers.cli import one_line

PHOTOS = [str(p) for p in bundled.sample_images()[:3]]


def test_a_basis_binds_to_what_is_run(tmp_path, basis_file):
    basis = basis_file
    # A model with other weights that claims the bundled model's identity in its metadata.
    impostor = reinitialise(onnx.load(str(bundled.model_path())), seed=1)
    export(impostor, tmp_path / "impostor.onnx")
    tapped = onnx.load(str(tmp_path / "impostor.onnx"))
    entry = next(p for p in tapped.metadata_props if p.key == "pfv_onnx")
    entry.value = json.dumps({**json.loads(entry.value), "source_sha256": PFV().featurizer.model_sha256})
    onnx.save(tapped, str(tmp_path / "impostor.onnx"))
    with pytest.raises(PFVError, match="fitted on another model"):
        PFV(tmp_path / "impostor.onnx", basis=basis)

    # Weights in an external file, swapped after the fit.
    folder = tmp_path / "external"
    folder.mkdir()
    onnx.save(onnx.load(str(bundled.model_path())), str(folder / "model.onnx"), save_as_external_data=True, location="weights.bin")
    fitted = PFV(folder / "model.onnx").fit(bundled.sample_images()[:3]).save_basis(tmp_path / "external.npz")
    before = PFV(folder / "model.onnx").describe()["model"]["sha256"]
    shutil.copy(folder / "weights.bin", tmp_path / "weights.bak")
    onnx.save(reinitialise(onnx.load(str(bundled.model_path())), seed=2), str(tmp_path / "other.onnx"), save_as_external_data=True, location="weights.bin")
    shutil.copy(tmp_path / "weights.bin", folder / "weights.bin")
    swapped = PFV(folder / "model.onnx")
    assert swapped.describe()["model"]["sha256"] != before
    with pytest.raises(PFVError, match="fitted on another model"):
        swapped._use_basis(fitted)
    # The model itself and its tapped export still take the basis.
    PFV(basis=basis)
    export("mobilenet_v2", tmp_path / "tapped.onnx", keep_logits=False)
    PFV(tmp_path / "tapped.onnx", basis=basis)


def test_a_basis_of_another_channel_count_is_refused_before_the_run(basis_file, tmp_path, capsys, monkeypatch):
    """A basis that claims this model's features but holds another number of channels: refused before
    anything is written (no journal, no lock, no folder), whether F_N's channels are declared or probed."""
    def wider(header, arrays):
        header["channels"] += 8
        arrays["mean"] = np.concatenate([arrays["mean"], np.zeros(8)])
        arrays["components"] = np.concatenate([arrays["components"], np.zeros((arrays["components"].shape[0], 8))], axis=1)

    crafted = write_basis(tmp_path / "wider.npz", basis_file, wider)
    out = tmp_path / "out"
    assert main(["explain", "mobilenet_v2", *PHOTOS, "--basis", str(crafted), "--out", str(out), "--quiet"]) == 2
    assert re.search("the basis has 1288 channels, this model's F_N .* has 1280", one_line(capsys.readouterr().err))
    assert not out.exists()
    monkeypatch.setattr(Featurizer, "final_shape", property(lambda self: None))  # undeclared: read from a pass
    with pytest.raises(PFVError, match="the basis has 1288 channels, this model's F_N .* has 1280"):
        PFV(basis=crafted)


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("hierarchical_text", lambda h, a: h.update(hierarchical="false"), "hierarchical is 'false', not a bool"),
        ("negative_images", lambda h, a: h.update(images=-7), "-7 images"),
        ("zero_prescale", lambda h, a: a["scalars"].__setitem__(1, 0.0), "prescale 0"),
        ("zero_spread", lambda h, a: a["scalars"].__setitem__(3, 0.0), "spread 0"),
        ("no_activation_values", lambda h, a: a["scalars"].__setitem__(6, 0.0), "0 activation values"),
        ("huge_components", lambda h, a: h.update(n_components=10**9, channels=10**9), "1000000000 components"),
        ("old_format", lambda h, a: h.update(version=1), "fit the basis again"),
        ("tiny_clip", lambda h, a: h.update(n_sigma=1e-300), "n_sigma 1e-300"),
    ],
)
def test_damaged_basis_files_are_refused(basis_file, tmp_path, name, change, message):
    damaged = write_basis(tmp_path / f"{name}.npz", basis_file, change)
    with pytest.raises(PFVError, match=message) as info:
        load_basis(damaged)
    assert "\n" not in str(info.value)


def test_a_basis_header_nested_too_deeply_is_refused(tmp_path, basis_file):
    with np.load(basis_file) as data:
        arrays = {k: data[k] for k in data.files if k != "header"}
    deep = ("[" * 200_000 + "]" * 200_000).encode()
    np.savez(tmp_path / "deep.npz", header=np.frombuffer(deep, dtype=np.uint8), **arrays)
    with pytest.raises(PFVError, match="not a readable basis file"):
        load_basis(tmp_path / "deep.npz")


def test_a_basis_zip_bomb_is_refused_unread(tmp_path, basis_file):
    bomb = tmp_path / "bomb.npz"
    shutil.copy(basis_file, bomb)
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as archive, archive.open("padding.npy", "w", force_zip64=True) as f:
        block = bytes(1 << 24)
        for _ in range(80):  # 1.25 GiB of zeros, a few MB on disk
            f.write(block)
    assert bomb.stat().st_size < 8 << 20
    with pytest.raises(PFVError, match="declares more data than a basis holds"):
        load_basis(bomb)
