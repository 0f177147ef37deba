"""The embedded TF Serving REST server, over real HTTP on loopback (waitress, no mocks).

Served folder: the tiny exported model as version 1 and 2 (links to one export), a broken
version 3, and a `models.config` labelling version 1 `stable`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.xdist_group("server")  # module fixtures built once (setup.cfg)

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- helpers


def http(url: str, method: str = "GET", body=None, raw: bytes | None = None, timeout: float = 30.0):
    """`(status, decoded JSON)` of one request."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        payload = err.read()
        assert err.headers.get("Content-Type", "").startswith("application/json"), payload
        return err.code, json.loads(payload)


def raw_http(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, dict]:
    """Sends bytes on a socket and parses the answer (for requests urllib cannot make)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    assert b"application/json" in head, head
    return status, json.loads(body)


def shape_image(height: int, width: int, seed: int) -> np.ndarray:
    """A float32 `[H, W, 1]` binary shape: a few rectangles and a disc."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width), np.float32)
    for _ in range(3):
        y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
        image[y:y + rng.integers(4, height // 2), x:x + rng.integers(4, width // 2)] = 1
    yy, xx = np.mgrid[:height, :width]
    image[(yy - height / 2) ** 2 + (xx - width / 3) ** 2 < (min(height, width) / 4) ** 2] = 1
    return image[:, :, None]


def png_bytes(image: np.ndarray) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", (image[:, :, 0] > 0.5).astype(np.uint8) * 255)
    assert ok
    return encoded.tobytes()


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def models_root(exported_tiny, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("served")
    source = Path(exported_tiny.saved_model).resolve()
    (root / "tiny").mkdir()
    for version in ("1", "2"):
        os.symlink(source, root / "tiny" / version, target_is_directory=True)
    (root / "tiny" / "3").mkdir()
    (root / "tiny" / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")
    (root / "models.config").write_text(
        'model_config_list {\n  config {\n    name: "tiny"  # the test model\n    base_path: "/models/tiny"\n'
        '    model_platform: "tensorflow"\n    version_labels { key: "stable" value: 1 }\n'
        '    version_labels { key: "canary" value: 2 }\n  }\n}\n')
    return root


@pytest.fixture(scope="module")
def server(models_root):
    from keras_skel.serving.server import start_server

    handle = start_server(models_root, port=0, max_body_bytes=1_000_000, threads=4)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def base(server) -> str:
    return server.url + "/v1/models/tiny"


@pytest.fixture(scope="module")
def reference(exported_tiny):
    """The exported signatures called in process: what every answer must equal."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(exported_tiny.saved_model))
    default, png = loaded.signatures["serving_default"], loaded.signatures["predict_png"]

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in default(images=tf.constant(images, tf.float32)).items()}

    def run_png(data: list[bytes]) -> list[bytes]:
        return list(png(image_bytes=tf.constant(data))["skeleton_png_bytes"].numpy())

    run.loaded, run.png = loaded, run_png
    return run


def assert_alive(base: str) -> None:
    status, answer = http(base + "/versions/1")
    assert status == 200 and answer["model_version_status"][0]["state"] == "AVAILABLE"


# ----------------------------------------------------------------------------- status, metadata


def test_status_lists_every_version(base):
    status, answer = http(base)
    assert status == 200
    entries = {e["version"]: e for e in answer["model_version_status"]}
    assert set(entries) == {"1", "2", "3"}
    assert entries["2"] == {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    assert entries["3"]["state"] == "END" and "could not load" in entries["3"]["status"]["error_message"]


def test_status_of_one_version_and_label(base):
    assert http(base + "/versions/2")[1]["model_version_status"][0]["version"] == "2"
    assert http(base + "/labels/stable")[1]["model_version_status"][0]["version"] == "1"
    assert http(base + "/labels/canary")[1]["model_version_status"][0]["version"] == "2"


def test_metadata_describes_signatures(base):
    status, answer = http(base + "/metadata")
    assert status == 200
    assert answer["model_spec"] == {"name": "tiny", "signature_name": "", "version": "2"}  # newest loaded
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    default = signatures["serving_default"]
    images = default["inputs"]["images"]
    assert images["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "-1", "-1", "1"]
    assert default["outputs"]["skeleton"]["dtype"] == "DT_UINT8"
    assert default["outputs"]["probability"]["dtype"] == "DT_FLOAT"
    assert default["method_name"] == "tensorflow/serving/predict"
    png = signatures["predict_png"]
    assert png["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
    assert [d["size"] for d in png["outputs"]["skeleton_png_bytes"]["tensor_shape"]["dim"]] == ["-1"]
    assert http(base + "/versions/1/metadata")[1]["model_spec"]["version"] == "1"
    assert http(base + "/labels/stable/metadata")[1]["model_spec"]["version"] == "1"


# ----------------------------------------------------------------------------- predict


def test_predict_row_format_equals_direct_call(base, reference):
    batch = np.stack([shape_image(40, 52, 0), shape_image(40, 52, 1)])
    status, answer = http(base + ":predict", "POST", {"instances": batch.tolist()})
    assert status == 200
    expected = reference(batch)
    rows = answer["predictions"]
    assert len(rows) == 2 and set(rows[0]) == {"skeleton", "probability"}
    skeleton = np.array([r["skeleton"] for r in rows], np.uint8)
    probability = np.array([r["probability"] for r in rows], np.float64).astype(np.float32)
    np.testing.assert_array_equal(skeleton, expected["skeleton"])
    np.testing.assert_array_equal(probability, expected["probability"])
    assert skeleton.sum() > 0


def test_predict_columnar_format_equals_direct_call(base, reference):
    batch = np.stack([shape_image(33, 47, 2)])
    expected = reference(batch)
    for body in ({"inputs": {"images": batch.tolist()}}, {"inputs": batch.tolist()},
                 {"signature_name": "serving_default", "inputs": batch.astype(int).tolist()}):
        status, answer = http(base + ":predict", "POST", body)
        assert status == 200, answer
        outputs = answer["outputs"]
        np.testing.assert_array_equal(np.array(outputs["skeleton"], np.uint8), expected["skeleton"])
        np.testing.assert_array_equal(np.array(outputs["probability"]).astype(np.float32), expected["probability"])


def test_predict_png_roundtrip(base, reference):
    import cv2

    images = [shape_image(48, 64, 3), shape_image(30, 41, 4)]  # different sizes in one request
    data = [png_bytes(image) for image in images]
    body = {"signature_name": "predict_png",
            "instances": [{"b64": base64.b64encode(d).decode()} for d in data]}
    status, answer = http(base + ":predict", "POST", body)
    assert status == 200
    returned = [base64.b64decode(p["b64"]) for p in answer["predictions"]]
    assert returned == reference.png(data)
    for image, encoded in zip(images, returned):
        decoded = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_UNCHANGED)
        skeleton = reference(image[None])["skeleton"][0, :, :, 0]
        np.testing.assert_array_equal(decoded, skeleton * 255)
    # Columnar, one output: the value itself.
    status, answer = http(base + ":predict", "POST", {"signature_name": "predict_png",
                                                      "inputs": {"image_bytes": body["instances"]}})
    assert status == 200 and [base64.b64decode(p["b64"]) for p in answer["outputs"]] == returned


def test_version_path_and_stable_label(base, reference):
    image = shape_image(24, 24, 5)
    expected = reference(image[None])["skeleton"][0].tolist()
    for path in ("/versions/1:predict", "/versions/2:predict", "/labels/stable:predict", "/labels/canary:predict"):
        status, answer = http(base + path, "POST", {"instances": [image.tolist()]})
        assert status == 200, (path, answer)
        assert answer["predictions"][0]["skeleton"] == expected


# ----------------------------------------------------------------------------- errors


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


ERRORS = [
    ("unknown model", "GET", "/v1/models/nope", None, 404, "nope"),
    ("unknown model predict", "POST", "/v1/models/nope:predict", {"instances": [[[[0]]]]}, 404, "nope"),
    ("unknown version", "GET", "/v1/models/tiny/versions/9", None, 404, "version 9"),
    ("unknown version predict", "POST", "/v1/models/tiny/versions/9:predict", {"instances": [[[[0]]]]}, 404, "9"),
    ("unknown label", "GET", "/v1/models/tiny/labels/beta", None, 404, "beta"),
    ("broken version", "POST", "/v1/models/tiny/versions/3:predict", {"instances": [[[[0]]]]}, 404, "could not load"),
    ("bad JSON", "POST", "/v1/models/tiny:predict", b'{"instances": [1,', 400, "not valid JSON"),
    ("not an object", "POST", "/v1/models/tiny:predict", [1, 2], 400, "JSON object"),
    ("neither format", "POST", "/v1/models/tiny:predict", {"signature_name": "serving_default"}, 400, "instances"),
    ("both formats", "POST", "/v1/models/tiny:predict", {"instances": [], "inputs": []}, 400, "not both"),
    ("rank-3 instances", "POST", "/v1/models/tiny:predict", {"instances": [[[0, 1], [1, 0]]]}, 400, "shape"),
    ("strings to images", "POST", "/v1/models/tiny:predict", {"instances": [[[["a"]]]]}, 400, "DT_FLOAT"),
    ("b64 to images", "POST", "/v1/models/tiny:predict", {"instances": [[[[_b64(b"x")]]]]}, 400, "b64"),
    ("booleans to images", "POST", "/v1/models/tiny:predict", {"instances": [[[[True]]]]}, 400, "true/false"),
    ("ragged instances", "POST", "/v1/models/tiny:predict",
     {"instances": [np.zeros((4, 4, 1)).tolist(), np.zeros((5, 4, 1)).tolist()]}, 400, "same shape"),
    ("unknown input name", "POST", "/v1/models/tiny:predict", {"inputs": {"pixels": [[[[0]]]]}}, 400, "pixels"),
    ("unknown signature", "POST", "/v1/models/tiny:predict", {"signature_name": "x", "instances": [1]}, 400, "'x'"),
    ("non-image bytes", "POST", "/v1/models/tiny:predict",
     {"signature_name": "predict_png", "instances": [_b64(b"certainly not a PNG")]}, 400, "image"),
    ("invalid base64", "POST", "/v1/models/tiny:predict",
     {"signature_name": "predict_png", "instances": [{"b64": "%%%"}]}, 400, "base64"),
    ("number to bytes", "POST", "/v1/models/tiny:predict",
     {"signature_name": "predict_png", "instances": [3]}, 400, "DT_STRING"),
    ("GET on predict", "GET", "/v1/models/tiny:predict", None, 405, "POST"),
    ("POST on status", "POST", "/v1/models/tiny", {}, 405, "GET"),
    ("classify", "POST", "/v1/models/tiny:classify", {"examples": []}, 501, "predict"),
    ("malformed path", "GET", "/v1/models/tiny/versions/1/extra", None, 404, "Malformed"),
    ("outside the API", "GET", "/v2/anything", None, 404, "/v1/models"),
]


@pytest.mark.parametrize("method, path, body, code, fragment", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_are_json_and_server_stays_up(server, base, method, path, body, code, fragment):
    raw = body if isinstance(body, bytes) else None
    status, answer = http(server.url + path, method, None if raw else body, raw=raw)
    assert status == code, answer
    assert set(answer) == {"error"} and fragment in answer["error"], answer
    assert "Traceback" not in answer["error"] and "[[{{node" not in answer["error"]
    assert_alive(base)


def test_oversized_body_is_refused_before_it_is_read(server, base):
    # The Content-Length alone decides: no body follows.
    request = (b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 5000000\r\n\r\n")
    status, answer = raw_http(server.port, request)
    assert status == 413 and "larger than the limit of 1000000 bytes" in answer["error"]
    assert_alive(base)


def test_oversized_chunked_body_is_refused(server, base):
    chunk = b"[" + b"0," * 150_000 + b"0]"
    request = (b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n")
    status, answer = raw_http(server.port, request)
    assert status == 413 and "limit" in answer["error"]
    assert_alive(base)


def test_body_just_under_the_limit_is_read(base):
    image = np.zeros((8, 8, 1)).tolist()
    text = json.dumps({"instances": [image]})
    padded = text[:-1] + " " * (1_000_000 - len(text)) + "}"
    assert len(padded) == 1_000_000
    status, answer = http(base + ":predict", "POST", raw=padded.encode())
    assert status == 200 and len(answer["predictions"]) == 1


# ----------------------------------------------------------------------------- concurrency


def test_parallel_requests(base, reference, exported_tiny):
    threshold = exported_tiny.card["threshold"]
    images = [shape_image(32 + 4 * i, 40, 10 + i) for i in range(8)]
    expected = [reference(image[None]) for image in images]
    results: list = [None] * len(images)
    barrier = threading.Barrier(len(images))

    def worker(index: int) -> None:
        barrier.wait()
        results[index] = http(base + ":predict", "POST", {"instances": [images[index].tolist()]})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for (status, answer), want in zip(results, expected):
        assert status == 200
        row = answer["predictions"][0]
        probability = np.array(row["probability"]).astype(np.float32)
        # Concurrent runs may differ in the last float bit (oneDNN's thread scheduling).
        np.testing.assert_allclose(probability, want["probability"][0], atol=1e-6)
        skeleton = np.array(row["skeleton"], np.uint8)
        if np.array_equal(probability >= threshold, want["probability"][0] >= threshold):
            np.testing.assert_array_equal(skeleton, want["skeleton"][0])


# ----------------------------------------------------------------------------- the CLI


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_serve_answers_and_stops_on_sigterm(exported_tiny, tmp_path):
    root = Path(exported_tiny.saved_model).parent.parent
    port = _free_port()
    executable = shutil.which("keras-skel", path=str(Path(sys.executable).parent))
    command = [executable] if executable else [sys.executable, "-m", "keras_skel.cli"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([*command, "serve", "--models", str(root), "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}/v1/models/tiny"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                status, answer = http(url, timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "keras-skel serve did not answer within 60 s"
                time.sleep(0.2)
        assert status == 200 and answer["model_version_status"][0]["state"] == "AVAILABLE"
        status, answer = http(url + ":predict", "POST", {"instances": [shape_image(16, 20, 0).tolist()]})
        assert status == 200 and len(answer["predictions"]) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()
    assert f"http://127.0.0.1:{port}/v1/models/tiny" in text and "stopped" in text


# ----------------------------------------------------------------------------- serving/ files


def test_models_config_parser_reads_committed_file():
    from keras_skel.serving.server import parse_models_config

    models = parse_models_config((REPO / "serving" / "models.config").read_text())
    shipped = _shipped_versions()
    assert set(models) == set(shipped) and "unet_shapes" in models
    for name, versions in shipped.items():
        assert models[name] == {"base_path": f"/models/{name}", "model_platform": "tensorflow",
                                "versions": versions, "labels": {"stable": max(versions)}}


def _shipped_versions() -> dict[str, list[int]]:
    """Every SavedModel version under saved_models/ (what serving/models.config must list)."""
    saved = REPO / "saved_models"
    return {p.name: sorted(int(v.name) for v in p.iterdir() if (v / "saved_model.pb").is_file())
            for p in sorted(saved.iterdir()) if p.is_dir() and any((v / "saved_model.pb").is_file()
                                                                    for v in p.iterdir())}


def test_rendered_config_round_trips(tmp_path):
    from keras_skel.serving.server import parse_models_config, render_models_config

    for name, versions in (("b_model", (1, 3)), ("a_model", (2,))):
        for version in versions:
            (tmp_path / name / str(version)).mkdir(parents=True)
            (tmp_path / name / str(version) / "saved_model.pb").write_bytes(b"")
    (tmp_path / "b_model" / "7").mkdir()  # no saved_model.pb: not a version
    (tmp_path / "b_model.tflite").write_bytes(b"")
    text = render_models_config(tmp_path, stable={"b_model": 1})
    assert text.index('"a_model"') < text.index('"b_model"')
    assert parse_models_config(text) == {
        "a_model": {"base_path": "/models/a_model", "model_platform": "tensorflow", "versions": [2],
                    "labels": {"stable": 2}},
        "b_model": {"base_path": "/models/b_model", "model_platform": "tensorflow", "versions": [1, 3],
                    "labels": {"stable": 1}},
    }


def test_committed_models_config_matches_saved_models():
    from keras_skel.serving.server import render_models_config

    saved = REPO / "saved_models"
    if not any(p.is_dir() and any(v.name.isdigit() for v in p.iterdir()) for p in saved.iterdir()):
        pytest.skip("saved_models/ holds no exported model yet: serving/models.config is written for the "
                    "shipped unet_shapes version 1 and is checked once it is exported")
    assert (REPO / "serving" / "models.config").read_text() == render_models_config(saved), (
        "serving/models.config is stale: run `python tools/make_models_config.py`")


def test_make_models_config_tool_check(tmp_path):
    shipped = _shipped_versions()
    for name, versions in shipped.items():  # the shipped layout, with empty stand-in SavedModels
        for version in versions:
            (tmp_path / name / str(version)).mkdir(parents=True)
            (tmp_path / name / str(version) / "saved_model.pb").write_bytes(b"")
    tool = [sys.executable, str(REPO / "tools" / "make_models_config.py"), "--models", str(tmp_path)]
    committed = REPO / "serving" / "models.config"
    check = subprocess.run([*tool, "--out", str(committed), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr  # the committed file is the tool's output for that layout
    newer = max(shipped["unet_shapes"]) + 1
    (tmp_path / "unet_shapes" / str(newer)).mkdir()
    (tmp_path / "unet_shapes" / str(newer) / "saved_model.pb").write_bytes(b"")
    stale = subprocess.run([*tool, "--out", str(committed), "--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and "out of date" in stale.stderr


def test_docker_compose_runs_stock_tf_serving():
    import yaml

    compose = yaml.safe_load((REPO / "serving" / "docker-compose.yml").read_text())
    service = compose["services"]["tf-serving"]
    assert "tensorflow/serving" in service["image"]
    flags = service["command"]
    assert "--rest_api_port=8501" in flags and "--enable_batching" in flags
    mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
    assert mounts["/models"] == "../saved_models"
    config_flag = next(f for f in flags if f.startswith("--model_config_file="))
    batching_flag = next(f for f in flags if f.startswith("--batching_parameters_file="))
    serving_dir = REPO / "serving"
    for flag in (config_flag, batching_flag):
        in_container = flag.split("=", 1)[1]
        assert (serving_dir / mounts[in_container]).resolve().is_file(), flag
    assert any(p.endswith(":8501") for p in service["ports"])


def test_batching_config_parses():
    from keras_skel.serving.server import _parse_text_proto

    fields = _parse_text_proto((REPO / "serving" / "batching.config").read_text())
    assert fields["max_batch_size"][0]["value"] == [8]
    assert set(fields) <= {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
                           "allowed_batch_sizes", "pad_variable_length_inputs", "enable_large_batch_splitting",
                           "max_execution_batch_size"}
    assert fields["pad_variable_length_inputs"] == ["false"]


def test_k8s_example_parses():
    import yaml

    documents = list(yaml.safe_load_all((REPO / "serving" / "k8s.yaml").read_text()))
    assert [d["kind"] for d in documents] == ["Deployment", "Service"]
    container = documents[0]["spec"]["template"]["spec"]["containers"][0]
    assert "--model_config_file=/config/models.config" in container["args"]
