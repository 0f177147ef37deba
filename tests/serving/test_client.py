"""`RestClient` and `RestSkeletonizer` against the embedded server over real HTTP on loopback."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from keras_skel.errors import KerasSkelError, ModelNotFoundError

pytestmark = pytest.mark.xdist_group("client")  # module fixtures built once (setup.cfg)


@pytest.fixture(scope="module")
def served(exported_tiny):
    from keras_skel.serving.server import start_server

    root = Path(exported_tiny.saved_model).parent.parent
    handle = start_server(root, port=0, max_body_bytes=2_000_000)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def url(served) -> str:
    return served.url + "/v1/models/tiny"


@pytest.fixture(scope="module")
def in_process(exported_tiny):
    from keras_skel.inference import SavedModelSkeletonizer

    return SavedModelSkeletonizer(exported_tiny.saved_model)


def shapes() -> list[np.ndarray]:
    """Binary shapes of several sizes (some not multiples of the network stride) and dtypes."""
    out = []
    rect = np.zeros((37, 53), bool)
    rect[6:30, 4:50] = True
    out.append(rect)
    yy, xx = np.mgrid[:64, :64]
    out.append(((yy - 32) ** 2 / 400 + (xx - 30) ** 2 / 150 < 1).astype(np.uint8) * 255)
    cross = np.zeros((45, 45), np.float32)
    cross[20:26, 3:42] = 1.0
    cross[3:42, 19:27] = 1.0
    out.append(cross)
    out.append(np.zeros((9, 11), bool))
    return out


def test_client_status_metadata_predict(url, in_process):
    from keras_skel.serving.client import RestClient

    client = RestClient(url)
    assert client.status()["model_version_status"][0]["state"] == "AVAILABLE"
    assert "predict_png" in client.metadata()["metadata"]["signature_def"]["signature_def"]
    image = shapes()[0].astype(np.float32)[:, :, None]
    flipped = image[::-1].copy()
    row = client.predict(instances=[image, flipped])
    columnar = client.predict(inputs={"images": np.stack([image, flipped])})
    # Same batch size as the request: oneDNN may round differently for another batch size.
    expected = {k: v.numpy() for k, v in in_process._fn(images=np.stack([image, flipped])).items()}
    for out in (row, columnar):
        assert out["skeleton"].dtype == np.uint8 and out["probability"].dtype == np.float32
        assert out["skeleton"].shape == (2, 37, 53, 1)
        np.testing.assert_array_equal(out["skeleton"], expected["skeleton"])
        np.testing.assert_array_equal(out["probability"], expected["probability"])


def test_client_predict_png_bytes(url, in_process):
    import cv2

    from keras_skel.serving.client import RestClient

    shape = shapes()[2]
    ok, encoded = cv2.imencode(".png", (shape > 0.5).astype(np.uint8) * 255)
    out = RestClient(url + "/versions/1").predict(instances=[encoded.tobytes()], signature_name="predict_png")
    png = out["skeleton_png_bytes"]
    assert png.shape == (1,) and isinstance(png[0], bytes)
    decoded = cv2.imdecode(np.frombuffer(png[0], np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded, in_process.predict(shape).skeleton * 255)


def test_rest_skeletonizer_identical_to_saved_model(url, in_process):
    import keras_skel
    from keras_skel.serving.client import RestSkeletonizer

    model = keras_skel.load(url)
    assert isinstance(model, RestSkeletonizer)
    assert model.name == url and model.threshold is None
    for shape in shapes():
        remote, local = model.predict(shape), in_process.predict(shape)
        assert remote.skeleton.dtype == np.uint8 and remote.probability.dtype == np.float32
        np.testing.assert_array_equal(remote.skeleton, local.skeleton)
        # Two runs of the same float32 graph may differ in the last bit (seen under heavy CPU
        # load: oneDNN's split of a reduction varies), so probabilities agree to 1e-6.
        np.testing.assert_allclose(remote.probability, local.probability, rtol=0, atol=1e-6)
    assert keras_skel.skeletonize(shapes()[2], model=model).sum() > 0


def test_rest_skeletonizer_threshold_override(url, exported_tiny):
    from keras_skel.inference import SavedModelSkeletonizer
    from keras_skel.serving.client import RestSkeletonizer

    remote = RestSkeletonizer(url + "/labels/stable", threshold=0.3)
    local = SavedModelSkeletonizer(exported_tiny.saved_model, threshold=0.3)
    shape = shapes()[1]
    np.testing.assert_array_equal(remote.predict(shape).skeleton, local.predict(shape).skeleton)


def test_unknown_model_raises_model_not_found(served):
    from keras_skel.serving.client import RestClient, RestSkeletonizer

    missing = served.url + "/v1/models/nope"
    with pytest.raises(ModelNotFoundError, match=r"HTTP 404.*nope") as info:
        RestClient(missing).status()
    assert missing in str(info.value)
    with pytest.raises(ModelNotFoundError, match="404"):
        RestSkeletonizer(served.url + "/v1/models/tiny/versions/8")


def test_refused_request_names_url_status_and_reason(url):
    from keras_skel.serving.client import RestClient, ServingError

    client = RestClient(url)
    with pytest.raises(ServingError) as info:
        client.predict(instances=[np.zeros((4, 4), np.float32)])  # rank 3 batch
    err = info.value
    assert err.status == 400 and err.url.endswith(":predict")
    assert "HTTP 400" in str(err) and "shape" in str(err) and url in str(err)
    assert isinstance(err, KerasSkelError)
    with pytest.raises(ServingError, match="not in .* image|image file format|Unknown image"):
        client.predict(instances=[b"not an image"], signature_name="predict_png")
    # 413 from the Content-Length: the server answers and closes while the body is being sent.
    with pytest.raises(ServingError, match="HTTP 413.*limit of 2000000 bytes"):
        client.predict_json({"instances": [[[[0]]]], "padding": "x" * 2_100_000})
    with pytest.raises(ModelNotFoundError, match="no signature 'nope'"):
        client.predict(instances=[np.zeros((4, 4, 1))], signature_name="nope")


def test_unreachable_server_and_bad_urls():
    from keras_skel.inference import load
    from keras_skel.serving.client import RestClient, ServingError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(ServingError, match=f"127.0.0.1:{port}.*no answer") as info:
        RestClient(f"http://127.0.0.1:{port}/v1/models/tiny", timeout=5).status()
    assert info.value.status is None
    for bad in ("http://localhost:8501/models/tiny", "http://localhost:8501/v1/models/",
                "http://localhost:8501/v1/models/tiny/versions/x"):
        with pytest.raises(ModelNotFoundError, match="not a TF Serving model URL"):
            load(bad)
