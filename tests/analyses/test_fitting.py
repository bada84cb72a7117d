"""A fitted basis: streaming fit equals the fit of the concatenation, fixed colours across batches, the
basis file, the command line, and the fit on a real Dask cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import zipfile
from dataclasses import astuple

import numpy as np
import pytest
from PIL import Image

from helpers.features import spiked_features
from pfv_onnx import PFV, PFVError, export
from pfv_onnx.images import bundled
from pfv_onnx.analyses.basis.file import VERSION, load_basis
from pfv_onnx.cli import main
from pfv_onnx.core import FeatureMoments, feature_matrix, fit_pca

# Merging partial moments reorders float64 sums: the stated tolerance is relative 1e-9.
RTOL = 1e-9


def test_moments_of_batches_equal_moments_of_their_concatenation_in_any_order():
    final = spiked_features(batch=9, channels=20, size=5)
    maps = [np.random.default_rng(2).random((9, 10, 10)).astype(np.float32)]
    whole = FeatureMoments.of(feature_matrix(final), maps, 9)
    parts = [FeatureMoments.of(feature_matrix(final[i : i + 2]), [maps[0][i : i + 2]], len(final[i : i + 2])) for i in range(0, 9, 2)]
    forward = parts[0]
    for part in parts[1:]:
        forward = forward.merge(part)
    backward = parts[-1]
    for part in reversed(parts[:-1]):
        backward = backward.merge(part)
    tree = parts[0].merge(parts[1]).merge(parts[2].merge(parts[3]).merge(parts[4]))
    for merged in (forward, backward, tree):
        assert merged.count == whole.count and merged.images == 9 and merged.layer_peaks == whole.layer_peaks
        np.testing.assert_allclose(merged.mean, whole.mean, rtol=RTOL)
        np.testing.assert_allclose(merged.scatter, whole.scatter, rtol=RTOL, atol=RTOL * np.abs(whole.scatter).max())
    basis = forward.basis(3, hierarchical=False, n_sigma=1.0)
    exact = fit_pca(feature_matrix(final), 3, solver="covariance")
    np.testing.assert_allclose(basis.pca.components, exact.components, atol=1e-8)
    np.testing.assert_allclose(basis.pca.explained_variance_ratio, exact.explained_variance_ratio, rtol=1e-8)


@pytest.fixture
def fitted(fitted_pfv):
    return fitted_pfv


def test_fit_does_not_depend_on_batch_size_or_order(fitted):
    other = PFV().fit(list(reversed(bundled.sample_images())), batch_size=8)
    np.testing.assert_allclose(other.basis.pca.components, fitted.basis.pca.components, atol=1e-8)
    for a, b in zip(astuple(other.basis.scaling), astuple(fitted.basis.scaling)):
        assert a == pytest.approx(b, rel=1e-8)
    assert other.basis.layer_peaks == fitted.basis.layer_peaks and other.basis.images == 8


def test_an_image_gets_the_same_colours_in_every_batch(fitted):
    dog = bundled.sample_image("dog")
    a = fitted.transform([bundled.sample_image("chelsea"), dog, bundled.sample_image("horses")])
    b = fitted.transform([dog, bundled.sample_image("coffee")])
    c = fitted.transform([dog])
    np.testing.assert_allclose(a.rgb[1], b.rgb[0], atol=1e-5)
    np.testing.assert_allclose(a.rgb[1], c.rgb[0], atol=1e-5)
    relative = [fitted(batch) for batch in ([bundled.sample_image("chelsea"), dog], [dog, bundled.sample_image("coffee")])]
    assert np.abs(relative[0].rgb[1] - relative[1].rgb[0]).max() > 0.3  # the paper's colours do depend on the batch


def test_every_picture_is_fixed_by_the_basis(fitted, tmp_path):
    """Under a basis, the activation and component pictures share its scales too, whatever the batch."""
    from pfv_onnx.render.report import batch_pictures

    dog = bundled.sample_image("dog")
    a = batch_pictures(fitted.transform([bundled.sample_image("chelsea"), dog]))
    b = batch_pictures(fitted.transform([dog, bundled.sample_image("coffee"), bundled.sample_image("horses")]))
    for kind in ("pfv", "overlay", "activation", "components"):
        assert np.abs(a[kind][1].astype(int) - b[kind][0].astype(int)).max() <= 1, kind


def test_the_basis_fixes_the_method_options(fitted, tmp_path):
    path = fitted.save_basis(tmp_path / "basis.npz")
    for conflict, words in (({"hierarchical": True}, "hierarchical is True here but False"), ({"n_components": 5}, "n_components is 5 here but 3"),
                            ({"n_sigma": 2.0}, "n_sigma is 2.0 here but 1.0")):
        with pytest.raises(PFVError, match=words):  # never silently dropped
            PFV(basis=path, **conflict)
    other = PFV(n_components=3, basis=path)
    assert (other.options.n_components, other.options.hierarchical, other.options.n_sigma) == (3, False, 1.0)
    assert other.describe()["options"]["n_components"] == 3
    with pytest.raises(PFVError, match="fitted with preset imagenet, not tf"):
        PFV(preset="tf", basis=path)
    with pytest.raises(PFVError, match="fitted with resize crop, not stretch"):
        PFV(resize="stretch", basis=path)


def test_calling_equals_fitting_on_the_batch_then_transforming_it():
    photos = bundled.sample_images()[:5]
    relative = PFV(solver="covariance")(photos)
    own = PFV().fit(photos).transform(photos)
    np.testing.assert_allclose(own.rgb, relative.rgb, atol=1e-4)


def test_basis_file_round_trip_and_refusals(fitted, tmp_path):
    path = fitted.save_basis(tmp_path / "basis.npz")
    again = PFV(basis=path)
    photos = bundled.sample_images()[:2]
    np.testing.assert_array_equal(again.transform(photos).rgb, fitted.transform(photos).rgb)
    basis, header = load_basis(path)
    assert header["images"] == 8 and header["taps"] == fitted.taps and header["final"] == fitted.final
    assert len(header["model_sha256"]) == 64 and header["version"] == VERSION

    # An export of the same model carries the source's identity, so the basis fits it too.
    export("mobilenet_v2", tmp_path / "tapped.onnx")
    PFV(tmp_path / "tapped.onnx", basis=path)

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(PFVError, match="truncated or damaged"):
        PFV(basis=truncated)
    with pytest.raises(PFVError, match="fitted on another model"):
        PFV("efficientnet_lite0", basis=path)
    with pytest.raises(PFVError, match="fitted on other layers"):
        PFV(final=fitted.taps[-1], basis=path)
    newer = tmp_path / "newer.npz"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(newer, "w") as target:
        for item in source.namelist():
            data = source.read(item)
            if item == "header.npy":
                header_bytes = np.load(path)["header"].tobytes()
                changed = json.loads(header_bytes)
                changed["version"] = VERSION + 1
                buffer = __import__("io").BytesIO()
                np.save(buffer, np.frombuffer(json.dumps(changed).encode(), dtype=np.uint8))
                data = buffer.getvalue()
            target.writestr(item, data)
    with pytest.raises(PFVError, match="newer than this pfv-onnx reads"):
        PFV(basis=newer)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(PFVError, match="not a readable basis file"):
        PFV(basis=other)


def test_cli_fit_then_explain_with_the_basis(tmp_path):
    photos = [str(p) for p in bundled.sample_images()]
    basis = tmp_path / "basis.npz"
    assert main(["fit", "mobilenet_v2", *photos, "--out", str(basis), "--batch", "4", "--quiet"]) == 0
    assert main(["explain", "mobilenet_v2", *photos[:4], "--out", str(tmp_path / "a"), "--basis", str(basis), "--quiet"]) == 0
    assert main(["explain", "mobilenet_v2", *photos[3:], "--out", str(tmp_path / "b"), "--basis", str(basis), "--quiet"]) == 0
    shared = bundled.sample_images()[3].stem  # in both runs, in different batches
    a = np.asarray(Image.open(tmp_path / "a" / "images" / f"{shared}_pfv.png"), dtype=int)
    b = np.asarray(Image.open(tmp_path / "b" / "images" / f"{shared}_pfv.png"), dtype=int)
    assert np.abs(a - b).max() <= 1  # the same colours (8-bit rounding apart)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["basis"]["images"] == 8
    assert main(["fit", "mobilenet_v2", *photos, "--out", str(basis), "--quiet"]) == 2  # exists already


# ---- Dask: a real LocalCluster with two worker processes ---------------------------------------------


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Sixteen photo files (the samples twice), so that the Dask fit has several shards."""
    folder = tmp_path_factory.mktemp("photos")
    for copy in range(2):
        for photo in bundled.sample_images():
            shutil.copy(photo, folder / f"{copy}_{photo.name}")
    return folder


def test_dask_fit_equals_the_in_process_fit(photo_folder):
    local = PFV().fit([photo_folder], batch_size=1)
    remote = PFV().fit([photo_folder], batch_size=1, dask="local")  # shards of 4 images: 4 tasks a pass
    assert remote.basis.images == local.basis.images == 16
    np.testing.assert_allclose(remote.basis.pca.components, local.basis.pca.components, atol=1e-8)
    for a, b in zip(astuple(remote.basis.scaling), astuple(local.basis.scaling)):
        assert a == pytest.approx(b, rel=1e-8)


def _fit_while_killing_a_worker(photo_folder, allowed_failures: int):
    import dask
    from dask.distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
            pids = client.run(os.getpid)
            outcome = {}

            def run():
                try:
                    outcome["pfv"] = PFV().fit([photo_folder], batch_size=1, dask=cluster.scheduler_address)
                except PFVError as exc:
                    outcome["error"] = exc

            thread = threading.Thread(target=run)
            thread.start()
            deadline = time.time() + 120
            while time.time() < deadline:  # kill a worker while it runs one of the fit's tasks
                busy = [address for address, tasks in client.processing().items() if tasks]
                if busy:
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    outcome["killed"] = busy[0]
                    break
                time.sleep(0.02)
            thread.join(timeout=300)
            return outcome


def test_a_worker_killed_during_the_fit_does_not_corrupt_it(photo_folder):
    outcome = _fit_while_killing_a_worker(photo_folder, allowed_failures=3)
    assert "killed" in outcome and "error" not in outcome, outcome
    local = PFV().fit([photo_folder], batch_size=1)
    np.testing.assert_allclose(outcome["pfv"].basis.pca.components, local.basis.pca.components, atol=1e-8)
    assert outcome["pfv"].basis.images == 16


def test_a_fit_whose_task_cannot_be_retried_fails_clearly(photo_folder):
    outcome = _fit_while_killing_a_worker(photo_folder, allowed_failures=0)
    assert "killed" in outcome and "pfv" not in outcome
    assert "the Dask fit failed" in str(outcome["error"]) and "\n" not in str(outcome["error"])
