"""A client of TensorFlow Serving's REST API (stock TF Serving or `keras-skel serve`).

`RestClient` speaks the API (status, metadata, predict) with the standard library only
(`http.client`, `json`);
`RestSkeletonizer` is the `keras_skel.inference.Skeletonizer` behind
`keras_skel.load("http://host:8501/v1/models/NAME")` and `keras-skel predict --model URL`.
"""

from __future__ import annotations

import http.client
import json
import re
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from keras_skel.errors import KerasSkelError, ModelNotFoundError
from keras_skel.inference import Prediction, Skeletonizer, as_binary, skeleton_from_probability
from keras_skel.serving.rest import (
    RestError,
    TensorInfo,
    make_predict_request,
    parse_predict_response,
    signature_from_metadata,
)

__all__ = ["RestClient", "RestSkeletonizer", "ServingError", "parse_model_url", "served_task", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 60.0
_URL = re.compile(r"^(?P<root>https?://[^/?#]+)/v1/models/(?P<name>[^/?#:]+)"
                  r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/?#:]+))?/?$")


class ServingError(KerasSkelError, RuntimeError):
    """A model server could not be reached or refused a request (other than 404).

    Attributes:
        url: the URL requested.
        status: the HTTP status (None when no answer came).
        server_message: the server's `error` text, if any.
    """

    def __init__(self, message: str, url: str, status: int | None = None, server_message: str | None = None):
        super().__init__(message)
        self.url = url
        self.status = status
        self.server_message = server_message


def parse_model_url(url: str) -> dict[str, str | None]:
    """Splits `http(s)://host:port/v1/models/NAME[/versions/V|/labels/L]`.

    Returns:
        `{"root", "name", "version", "label"}` (None where absent).

    Raises:
        ModelNotFoundError: the URL does not have that form.

    Example:
        >>> parse_model_url("http://localhost:8501/v1/models/unet_shapes/labels/stable")["label"]
        'stable'
    """
    match = _URL.match(url.strip())
    if match is None:
        raise ModelNotFoundError(f"{url!r} is not a TF Serving model URL; expected "
                                 "http(s)://HOST:PORT/v1/models/NAME[/versions/V|/labels/L]")
    return match.groupdict()


class RestClient:
    """TF Serving's REST API for one model (and optionally one version or label).

    Args:
        base_url: `http(s)://host:port/v1/models/NAME[/versions/V|/labels/L]`.
        timeout: seconds to wait for each answer.

    Raises:
        ModelNotFoundError: `base_url` is not a model URL.

    Example:
        >>> client = RestClient("http://localhost:8501/v1/models/unet_shapes")  # doctest: +SKIP
        >>> client.status()["model_version_status"][0]["state"]  # doctest: +SKIP
        'AVAILABLE'
        >>> out = client.predict(instances=[np.zeros((32, 32, 1), np.float32)])  # doctest: +SKIP
        >>> out["skeleton"].shape  # doctest: +SKIP
        (1, 32, 32, 1)
    """

    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT):
        parts = parse_model_url(base_url)
        self.base_url = base_url.strip().rstrip("/")
        self.name = parts["name"]
        self.timeout = timeout
        self._metadata: dict | None = None

    def _request(self, method: str, url: str, body: Any = None) -> Any:
        # http.client rather than urllib: when a server refuses a large body from its
        # Content-Length (413) and closes while the body is still being sent, the answer can
        # still be read after the broken pipe; urllib loses it. (No proxy support: model
        # servers are addressed directly.)
        parts = urlsplit(url)
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        data = None if body is None else json.dumps(body).encode("utf-8")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = connection_class(parts.hostname, parts.port, timeout=self.timeout)
        try:
            try:
                connection.request(method, path, body=data, headers={"Content-Type": "application/json",
                                                                     "Accept": "application/json"})
            except (BrokenPipeError, ConnectionResetError):
                if data is None:
                    raise
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as err:
            if isinstance(err, TimeoutError):
                hint = f"nothing came back within {self.timeout:g} s (RestClient(timeout=...))"
            elif data is not None and isinstance(err, (BrokenPipeError, ConnectionResetError,
                                                       http.client.HTTPException)):
                hint = f"the server closed the connection; it may refuse bodies of {len(data)} bytes"
            else:
                hint = ("is it running? (`keras-skel serve --models saved_models`, or TF Serving with "
                        "--rest_api_port)")
            reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            raise ServingError(f"{method} {url}: no answer from the model server ({reason}); {hint}", url) from None
        finally:
            connection.close()
        if response.status >= 400:
            raise self._http_error(method, url, response.status, response.reason, raw)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ServingError(f"{method} {url}: the answer is not JSON: {raw[:200]!r}", url,
                               response.status) from None

    def _http_error(self, method: str, url: str, status: int, reason: str, raw: bytes) -> Exception:
        try:
            server_message = json.loads(raw)["error"]
        except (ValueError, KeyError, TypeError):
            server_message = raw[:300].decode("utf-8", "replace").strip() or reason
        message = f"{method} {url}: HTTP {status}: {server_message}"
        if status == 404:
            return ModelNotFoundError(message)
        return ServingError(message, url, status, str(server_message))

    def status(self) -> dict:
        """`{"model_version_status": [...]}` of the model (or of its version / label)."""
        return self._request("GET", self.base_url)

    def metadata(self) -> dict:
        """`{"model_spec": ..., "metadata": {"signature_def": {"signature_def": ...}}}` (cached)."""
        if self._metadata is None:
            self._metadata = self._request("GET", self.base_url + "/metadata")
        return self._metadata

    def signature(self, signature_name: str = "serving_default"
                  ) -> tuple[dict[str, TensorInfo], dict[str, TensorInfo]]:
        """`(inputs, outputs)` of a signature, from the metadata.

        Raises:
            ModelNotFoundError: the model has no such signature.
        """
        metadata = self.metadata()
        try:
            return signature_from_metadata(metadata, signature_name)
        except (KeyError, TypeError):
            try:
                names = sorted(metadata["metadata"]["signature_def"]["signature_def"])
            except (KeyError, TypeError):
                names = []
            raise ModelNotFoundError(f"{self.base_url} has no signature {signature_name!r} "
                                     f"(signatures: {', '.join(n for n in names if not n.startswith('__'))})") from None

    def predict_json(self, body: dict) -> dict:
        """POSTs a ready `:predict` body and returns the decoded JSON answer."""
        return self._request("POST", self.base_url + ":predict", body)

    def predict(self, instances: Any = None, inputs: Any = None,
                signature_name: str = "serving_default") -> dict[str, np.ndarray]:
        """Runs a signature on a batch.

        Args:
            instances: row format: one item per batch element (a NumPy array or nested list
                for a single-input signature, `bytes` for string inputs, or a dict of named
                inputs).
            inputs: columnar format: the whole batch of the only input, or a dict of inputs.
            signature_name: `serving_default` or `predict_png` for keras-skel models.

        Returns:
            One array per output, with the signature's dtypes (strings as `bytes`).

        Raises:
            ModelNotFoundError: (404) unknown model, version, label or signature.
            ServingError: the server is unreachable or refused the request (its message says
                why).
        """
        _, outputs = self.signature(signature_name)
        body = make_predict_request(instances=instances, inputs=inputs, signature_name=signature_name)
        answer = self.predict_json(body)
        try:
            return parse_predict_response(answer, outputs)
        except RestError as err:
            raise ServingError(f"POST {self.base_url}:predict: {err}", self.base_url + ":predict") from None


class RestSkeletonizer(Skeletonizer):
    """A model served over TF Serving's REST API, as a `Skeletonizer`.

    Each `predict` POSTs one image to the `serving_default` signature in row format; the
    server's graph binarizes, runs the network, thresholds and thins, exactly as
    `SavedModelSkeletonizer` does in process.

    Args:
        url: `http(s)://host:port/v1/models/NAME[/versions/V|/labels/L]`.
        threshold: when given, the skeleton is recomputed locally from the returned probability
            with this threshold (the same graph ops); the served model's own threshold is not
            exposed by the TF Serving API, so `self.threshold` is None otherwise.
        timeout: seconds per request.
        prune_length, gate_radius: the served model's post-processing (its model card),
            applied when the skeleton is recomputed with `threshold`: the REST API does not
            expose them either.

    Raises:
        ModelNotFoundError: no such model, or not a keras-skel skeleton model.
        ServingError: the server cannot be reached.

    Example:
        >>> model = RestSkeletonizer("http://localhost:8501/v1/models/unet_shapes")  # doctest: +SKIP
        >>> model.skeletonize(np.ones((32, 48), bool)).shape  # doctest: +SKIP
        (32, 48)
    """

    def __init__(self, url: str, threshold: float | None = None, timeout: float = DEFAULT_TIMEOUT,
                 prune_length: int = 0, gate_radius: int = 0):
        self.client = RestClient(url, timeout=timeout)
        self.prune_length = int(prune_length)
        self.gate_radius = int(gate_radius)
        self.name = self.client.base_url
        inputs, outputs = self.client.signature("serving_default")
        if "images" not in inputs or not {"skeleton", "probability"} <= set(outputs):
            raise ModelNotFoundError(
                f"{url} is not a keras-skel skeleton model: its serving_default takes "
                f"{', '.join(inputs) or 'nothing'} and returns {', '.join(outputs) or 'nothing'} (expected "
                "images → skeleton, probability)")
        self.threshold = None if threshold is None else float(threshold)

    def predict(self, shape: np.ndarray) -> Prediction:
        image = as_binary(shape).astype(np.uint8)[:, :, None]  # 0/1 ints: compact JSON, same float32
        out = self.client.predict(instances=[image], signature_name="serving_default")
        probability = out["probability"][0, :, :, 0].astype(np.float32)
        if self.threshold is None:
            return Prediction(out["skeleton"][0, :, :, 0].astype(np.uint8), probability)
        return Prediction(skeleton_from_probability(probability, self.threshold, self.prune_length,
                                                    self.gate_radius, shape), probability)


def served_task(url: str) -> str | None:
    """The task of a model served over TF Serving's REST API, read off its `serving_default`
    signature: `volumes` (images → points), `thin` (images → labels), `natural` (RGB images →
    skeleton and flux + confidence, or probability for the classification baseline), None for
    the binary-shape models (one-channel images → skeleton, probability)."""
    inputs, outputs = RestClient(url).signature("serving_default")
    images = inputs.get("images")
    if "points" in outputs:
        return "volumes"
    if "labels" in outputs:
        return "thin"
    if images is not None and images.shape and images.shape[-1] == 3 and "skeleton" in outputs:
        return "natural"
    return None
