"""An embedded server speaking TensorFlow Serving's REST API, for machines without TF Serving.

`keras-skel serve --models saved_models` loads every `NAME/VERSION/` SavedModel under the
folder once, at start, and answers:

- `GET  /v1/models/NAME[/versions/V|/labels/L]` → `{"model_version_status": [...]}`
  (all versions when neither is given);
- `GET  /v1/models/NAME[/versions/V|/labels/L]/metadata` → `{"model_spec": ..., "metadata":
  {"signature_def": {"signature_def": {...}}}}`, the SignatureDefs as TF Serving writes them;
- `POST /v1/models/NAME[/versions/V|/labels/L]:predict` with `instances` (row) or `inputs`
  (columnar), `{"b64": ...}` for bytes (encoding in `keras_skel.serving.rest`).

Without a version the newest is used, as TF Serving does. Version labels come from a TF
Serving `models.config` (`version_labels { key: "stable" value: 1 }`): `config_file`, else
`MODELS_DIR/models.config`, else `MODELS_DIR/../serving/models.config` (the checkout layout);
a model it gives no `stable` label gets `stable` = its newest version. Every version found is
served (TF Serving's `model_version_policy { all {} }`).

Errors are `{"error": "..."}` with 400 (bad JSON, dtype, shape, bytes that are not an
image...), 404 (unknown model, version, label), 405 (wrong method), 413 (body over
`max_body_bytes`, refused from its Content-Length before the body is read) or 500; the server
keeps running after each. Requests run concurrently on waitress threads (a loaded signature is
a TF concrete function, which is thread-safe).
"""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keras_skel.errors import ConfigError, ModelNotFoundError
from keras_skel.export.layout import NAME_PATTERN
from keras_skel.serving.rest import RestError, TensorInfo, format_predict_response, parse_predict_request

__all__ = [
    "make_app",
    "serve",
    "start_server",
    "ServerHandle",
    "ModelRepository",
    "Servable",
    "parse_models_config",
    "render_models_config",
    "find_models_config",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_LABEL",
]

DEFAULT_MAX_BODY_BYTES = 32_000_000
DEFAULT_LABEL = "stable"
MODELS_CONFIG = "models.config"
_NAME = NAME_PATTERN  # model names, as `keras-skel export` allows them
# NAME, then /versions/V or /labels/L, then /metadata or :VERB.
_ROUTE = re.compile(rf"^(?P<name>{_NAME})(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
                    r"(?:(?P<metadata>/metadata)|:(?P<verb>[A-Za-z]+))?/?$")
# TF error codes → HTTP status, as TF Serving's REST handler maps them.
_HTTP_STATUS = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400,
                12: 501, 13: 500, 14: 503, 15: 500, 16: 401}

log = logging.getLogger("keras_skel.serving")


# ----------------------------------------------------------------------------- models.config


def parse_models_config(text: str) -> dict[str, dict[str, Any]]:
    """The models of a TF Serving `model_config_list` text proto.

    A small text-proto reader (messages, `key: value`, strings, numbers, `#` comments),
    enough for `models.config` files.

    Args:
        text: the file's content.

    Returns:
        `{name: {"base_path": str, "model_platform": str, "versions": [int] | None (all),
        "labels": {label: version}}}`.

    Raises:
        ConfigError: the text is not a `model_config_list`.

    Example:
        >>> parse_models_config('model_config_list { config { name: "m" base_path: "/models/m" '
        ...                     'version_labels { key: "stable" value: 2 } } }')["m"]["labels"]
        {'stable': 2}
    """
    tree = _parse_text_proto(text)
    lists = tree.get("model_config_list", [])
    if len(lists) != 1:
        raise ConfigError("a models.config must hold exactly one model_config_list { ... }")
    models = {}
    for config in lists[0].get("config", []):
        name = _single(config, "name")
        labels = {}
        for entry in config.get("version_labels", []):
            labels[str(_single(entry, "key"))] = int(_single(entry, "value"))
        versions = None
        for policy in config.get("model_version_policy", []):
            if "specific" in policy:
                versions = [int(v) for v in policy["specific"][0].get("versions", [])]
            elif "latest" in policy:
                versions = []  # the newest N; resolved against the folder by the caller
        models[str(name)] = dict(base_path=_single(config, "base_path", ""),
                                 model_platform=_single(config, "model_platform", "tensorflow"),
                                 versions=versions, labels=labels)
    return models


def _single(message: dict, key: str, default: Any = None) -> Any:
    values = message.get(key, [])
    if not values:
        if default is None:
            raise ConfigError(f"models.config: a message lacks its {key!r} field")
        return default
    return values[-1]


_TOKEN = re.compile(r'\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[{}:;,<>\[\]]|[^\s{}:;,<>\[\]#]+')


def _parse_text_proto(text: str) -> dict[str, list]:
    """Text proto → `{field: [values]}`, nested messages as dicts (every field repeated)."""
    tokens = [t for t in _TOKEN.findall(text) if t.strip() and not t.startswith("#")]
    position = 0

    def message(closing: str | None) -> dict[str, list]:
        nonlocal position
        fields: dict[str, list] = {}
        while position < len(tokens):
            token = tokens[position]
            if token == closing:
                position += 1
                return fields
            if token in (";", ","):
                position += 1
                continue
            key = token
            position += 1
            if position < len(tokens) and tokens[position] == ":":
                position += 1
            if position >= len(tokens):
                raise ConfigError(f"models.config: field {key!r} has no value")
            value_token = tokens[position]
            if value_token in ("{", "<"):
                position += 1
                value: Any = message("}" if value_token == "{" else ">")
            else:
                position += 1
                value = _scalar(value_token)
            fields.setdefault(key, []).append(value)
        if closing is not None:
            raise ConfigError("models.config: a '{' is never closed")
        return fields

    return message(None)


def _scalar(token: str) -> Any:
    if token[0] in "\"'":
        return bytes(token[1:-1], "utf-8").decode("unicode_escape")
    try:
        return int(token)
    except ValueError:
        try:
            return float(token)
        except ValueError:
            return token  # enums, true/false


def _model_folders(models_dir: Path) -> dict[str, list[int]]:
    """`{name: [versions]}` of the SavedModels under `models_dir` (versions holding saved_model.pb)."""
    from keras_skel.export.layout import versions

    found = {}
    for folder in sorted(p for p in Path(models_dir).iterdir() if p.is_dir()):
        if not re.fullmatch(_NAME, folder.name):
            continue
        served = [v for v in versions(folder) if _has_saved_model(folder / str(v))]
        if served:
            found[folder.name] = served
    return found


def _has_saved_model(folder: Path) -> bool:
    return (folder / "saved_model.pb").is_file() or (folder / "saved_model.pbtxt").is_file()


def render_models_config(models_dir: str | Path, base_path: str = "/models",
                         stable: dict[str, int] | None = None) -> str:
    """The TF Serving `models.config` for every SavedModel under `models_dir`.

    Each model is served at `base_path/NAME` with every version found (`specific` policy, so a
    version copied in later is not served until the file is regenerated) and the label
    `stable` on its newest version, unless `stable` says otherwise.

    Args:
        models_dir: the `saved_models/` folder (`NAME/VERSION/saved_model.pb`).
        base_path: where that folder is mounted in the TF Serving container.
        stable: `{name: version}` overriding the `stable` label.

    Returns:
        The file's text (deterministic: models in name order).

    Raises:
        ModelNotFoundError: a `stable` version that is not in the folder.

    Example:
        >>> print(render_models_config("saved_models"))  # doctest: +SKIP
    """
    stable = dict(stable or {})
    lines = [
        "# TF Serving model config for the SavedModels in saved_models/ (mounted at "
        f"{base_path}).",
        "# Generated by `python tools/make_models_config.py`; regenerate it after exporting a model.",
        "model_config_list {",
    ]
    for name, found in _model_folders(Path(models_dir)).items():
        label = stable.pop(name, found[-1])
        if label not in found:
            raise ModelNotFoundError(f"stable version {label} of {name} is not in {models_dir}/{name} "
                                     f"(versions: {', '.join(map(str, found))})")
        lines += ["  config {", f'    name: "{name}"', f'    base_path: "{base_path.rstrip("/")}/{name}"',
                  '    model_platform: "tensorflow"', "    model_version_policy {", "      specific {"]
        lines += [f"        versions: {v}" for v in found]
        lines += ["      }", "    }", "    version_labels {", f'      key: "{DEFAULT_LABEL}"',
                  f"      value: {label}", "    }", "  }"]
    if stable:
        raise ModelNotFoundError(f"no SavedModel named {', '.join(stable)} under {models_dir}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def find_models_config(models_dir: str | Path) -> Path | None:
    """`MODELS_DIR/models.config`, else `MODELS_DIR/../serving/models.config`, else None."""
    models_dir = Path(models_dir)
    for candidate in (models_dir / MODELS_CONFIG, models_dir.resolve().parent / "serving" / MODELS_CONFIG):
        if candidate.is_file():
            return candidate
    return None


# ----------------------------------------------------------------------------- loaded models


@dataclass
class Servable:
    """One loaded version of a model.

    Attributes:
        name, version, path: where it came from.
        signatures: signature name → concrete function (None when loading failed).
        inputs, outputs: signature name → {tensor name: TensorInfo}.
        signature_def: the SignatureDefs as TF Serving's metadata JSON writes them.
        error: why it failed to load (None when it is available).
    """

    name: str
    version: int
    path: Path
    signatures: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, dict[str, TensorInfo]] = field(default_factory=dict)
    outputs: dict[str, dict[str, TensorInfo]] = field(default_factory=dict)
    signature_def: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    loaded: Any = None  # keeps the variables of the signatures alive

    def status(self) -> dict:
        """This version's entry of `model_version_status`."""
        if self.error is None:
            return {"version": str(self.version), "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""}}
        return {"version": str(self.version), "state": "END",
                "status": {"error_code": "UNKNOWN", "error_message": self.error}}


def _load_servable(name: str, version: int, path: Path) -> Servable:
    import tensorflow as tf

    servable = Servable(name, version, path)
    try:
        loaded = tf.saved_model.load(str(path))
        servable.signature_def = _signature_defs(path)
    except Exception as err:  # a broken version must not stop the others from being served
        servable.error = f"could not load {path}: {_tf_message(err)}"
        log.warning(servable.error)
        return servable
    servable.loaded = loaded
    for signature_name, fn in loaded.signatures.items():
        servable.signatures[signature_name] = fn
        specs = fn.structured_input_signature[1]
        servable.inputs[signature_name] = {key: _info(key, spec) for key, spec in specs.items()}
        servable.outputs[signature_name] = {key: _info(key, spec) for key, spec in fn.structured_outputs.items()}
    return servable


def _info(name: str, spec) -> TensorInfo:
    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    return TensorInfo(name, spec.dtype.name, shape)


def _signature_defs(path: Path) -> dict:
    """The SignatureDefs of a SavedModel's `serve` graph, in TF Serving's JSON form."""
    from google.protobuf import json_format, text_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    if (path / "saved_model.pb").is_file():
        saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
    else:
        text_format.Parse((path / "saved_model.pbtxt").read_text(), saved_model)
    graphs = [g for g in saved_model.meta_graphs if "serve" in g.meta_info_def.tags] or list(saved_model.meta_graphs)
    return {name: json_format.MessageToDict(signature, preserving_proto_field_name=True,
                                            always_print_fields_with_no_presence=True)
            for name, signature in sorted(graphs[0].signature_def.items())}


class ModelRepository:
    """The models a server answers for: `{name: {version: Servable}}` plus version labels.

    Args:
        models: loaded servables by name and version.
        labels: `{name: {label: version}}`.
        config_file: the `models.config` the labels came from, if any.
    """

    def __init__(self, models: dict[str, dict[int, Servable]], labels: dict[str, dict[str, int]],
                 config_file: Path | None = None):
        self.models = models
        self.labels = labels
        self.config_file = config_file

    @classmethod
    def load(cls, models_dir: str | Path, config_file: str | Path | None = None) -> "ModelRepository":
        """Loads every `NAME/VERSION/` SavedModel under `models_dir` (each with `tf.saved_model.load`).

        Args:
            models_dir: e.g. `saved_models`.
            config_file: a TF Serving `models.config` for version labels; None looks for one
                (`find_models_config`).

        Raises:
            ModelNotFoundError: no SavedModel under `models_dir`.
            ConfigError: `config_file` cannot be read or parsed.
        """
        models_dir = Path(models_dir)
        if not models_dir.is_dir():
            raise ModelNotFoundError(f"{models_dir} is not a folder of exported models")
        found = _model_folders(models_dir)
        if not found:
            raise ModelNotFoundError(
                f"no SavedModel under {models_dir}: expected NAME/VERSION/saved_model.pb folders, as "
                "`keras-skel export RUN_DIR --name NAME --root DIR` writes"
            )
        config_path = Path(config_file) if config_file is not None else find_models_config(models_dir)
        configured: dict[str, dict[str, Any]] = {}
        if config_path is not None:
            try:
                configured = parse_models_config(config_path.read_text())
            except OSError as err:
                raise ConfigError(f"cannot read {config_path}: {err}") from None
            except ConfigError as err:
                raise ConfigError(f"{config_path}: {err}") from None
        models, labels = {}, {}
        for name, versions in found.items():
            models[name] = {v: _load_servable(name, v, models_dir / name / str(v)) for v in versions}
            labels[name] = {DEFAULT_LABEL: versions[-1]}
            labels[name].update(configured.get(name, {}).get("labels", {}))
            for label, version in labels[name].items():
                if version not in models[name]:
                    log.warning("label %r of model %s points at version %s, which is not under %s",
                                label, name, version, models_dir / name)
        return cls(models, labels, config_path)

    def names(self) -> list[str]:
        return sorted(self.models)

    def _versions(self, name: str) -> dict[int, Servable]:
        if name not in self.models:
            raise RestError(f"Could not find any versions of model {name} (models served: "
                            f"{', '.join(self.names())})", 404)
        return self.models[name]

    def resolve(self, name: str, version: str | None = None, label: str | None = None) -> Servable:
        """The servable a URL names; the newest available version when neither is given.

        Raises:
            RestError: (404) unknown model, version or label, or a version that failed to load.
        """
        versions = self._versions(name)
        if label is not None:
            if label not in self.labels[name]:
                raise RestError(f"Unrecognized servable version label: {label} (model {name} has labels "
                                f"{', '.join(sorted(self.labels[name]))})", 404)
            number = self.labels[name][label]
            if number not in versions:
                raise RestError(f"label {label} of model {name} points at version {number}, which is not "
                                f"loaded (versions: {', '.join(map(str, versions))})", 404)
        elif version is not None:
            if not version.isdigit() or int(version) not in versions:
                raise RestError(f"Servable not found for request: Specific({name}, {version}) "
                                f"(versions of {name}: {', '.join(map(str, versions))})", 404)
            number = int(version)
        else:
            available = [v for v, s in versions.items() if s.error is None]
            if not available:
                raise RestError(f"Servable not found for request: Latest({name}): no version loaded "
                                f"({versions[max(versions)].error})", 404)
            number = max(available)
        servable = versions[number]
        if servable.error is not None:
            raise RestError(f"version {number} of model {name} is not available: {servable.error}", 404)
        return servable

    def status(self, name: str, version: str | None = None, label: str | None = None) -> dict:
        """`{"model_version_status": [...]}` (every version when neither version nor label is given)."""
        versions = self._versions(name)
        if version is None and label is None:
            entries = [versions[v].status() for v in sorted(versions, reverse=True)]
        else:
            if label is not None:
                servable = self.resolve(name, label=label)
            elif not version.isdigit() or int(version) not in versions:
                raise RestError(f"Could not find version {version} of model {name} (versions: "
                                f"{', '.join(map(str, versions))})", 404)
            else:
                servable = versions[int(version)]
            entries = [servable.status()]
        return {"model_version_status": entries}

    def metadata(self, name: str, version: str | None = None, label: str | None = None) -> dict:
        """`{"model_spec": ..., "metadata": {"signature_def": {"signature_def": ...}}}`."""
        servable = self.resolve(name, version, label)
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": {"signature_def": servable.signature_def}},
        }

    def predict(self, servable: Servable, body: Any) -> dict:
        """Runs a `:predict` body on `servable` and formats the answer."""
        import tensorflow as tf

        if not isinstance(body, dict):
            raise RestError("the request body must be a JSON object with 'instances' or 'inputs'")
        signature_name = body.get("signature_name") or "serving_default"
        if not isinstance(signature_name, str) or signature_name not in servable.signatures:
            raise RestError(f"Serving signature name: {signature_name!r} not found in signature def "
                            f"(signatures of {servable.name}: "
                            f"{', '.join(sorted(s for s in servable.signatures if not s.startswith('__')))})")
        arrays, row = parse_predict_request(body, servable.inputs[signature_name], signature_name)
        fn = servable.signatures[signature_name]
        try:
            outputs = fn(**{key: tf.constant(value, dtype=fn.structured_input_signature[1][key].dtype)
                            for key, value in arrays.items()})
        except tf.errors.OpError as err:
            shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in arrays.items())
            raise RestError(f"signature '{signature_name}' of {servable.name} version {servable.version} "
                            f"failed on this input ({shapes}): {_tf_message(err)}",
                            _HTTP_STATUS.get(err.error_code, 500)) from None
        return format_predict_response({k: v.numpy() for k, v in outputs.items()}, row)


_TF_NOISE = ("Graph execution error", "Detected at node", 'File "', "<stack traces", "[[")


def _tf_message(err: BaseException) -> str:
    """A TF error's message without graph tracebacks, node names and op ids."""
    text = getattr(err, "message", None) or str(err)
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(_TF_NOISE) or stripped.endswith("(most recent call last):"):
            continue
        if line.startswith("    "):  # source lines under a stack frame
            continue
        kept.append(stripped)
    message = " ".join(kept) or text.strip().splitlines()[-1]
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    message = re.sub(r"\s*\[Op:[^\]]*\]", "", message)
    message = re.sub(r"\s*\[\[\{\{node [^}]*\}\}\]\]", "", message)
    return message.strip()


# ----------------------------------------------------------------------------- the Flask app


def make_app(models: str | Path | ModelRepository, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
             config_file: str | Path | None = None):
    """The Flask app serving TF Serving's REST API for a models folder.

    Args:
        models: a `saved_models/`-like folder (`NAME/VERSION/`), or a loaded `ModelRepository`.
        max_body_bytes: larger request bodies are answered 413 (from the Content-Length header
            when there is one, else after reading `max_body_bytes + 1` bytes at most).
        config_file: a TF Serving `models.config` with version labels (see `find_models_config`).

    Returns:
        A `flask.Flask` WSGI app (`app.repository` is the `ModelRepository`).

    Raises:
        ModelNotFoundError: the folder holds no SavedModel.

    Example:
        >>> app = make_app("saved_models")  # doctest: +SKIP
        >>> app.test_client().get("/v1/models/unet_shapes").json  # doctest: +SKIP
        {'model_version_status': [{'version': '1', 'state': 'AVAILABLE', ...}]}
    """
    from flask import Flask, Response, request
    from werkzeug.exceptions import HTTPException

    repository = models if isinstance(models, ModelRepository) else ModelRepository.load(models, config_file)
    app = Flask("keras_skel.serving")
    app.repository = repository

    def reply(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
        return Response(json.dumps(payload), status=status, headers=headers, mimetype="application/json")

    def error(message: str, status: int, headers: dict | None = None) -> Response:
        return reply({"error": message}, status, headers)

    @app.errorhandler(RestError)
    def rest_error(err: RestError):
        return error(err.message, err.status)

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        if err.code == 404:
            return error(f"Malformed request: {request.method} {request.path}; the API is GET /v1/models/NAME"
                         "[/versions/V|/labels/L][/metadata] and POST /v1/models/NAME[/versions/V|/labels/L]"
                         ":predict", 404)
        return error(f"{err.name}: {err.description}", err.code or 500)

    @app.errorhandler(Exception)
    def unexpected(err: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error(f"internal error: {type(err).__name__}: {err}", 500)

    def read_body() -> bytes:
        length = request.content_length
        if length is not None and length > max_body_bytes:
            raise RestError(_too_large(max_body_bytes, length), 413)
        data = request.stream.read(max_body_bytes + 1)
        if len(data) > max_body_bytes:
            raise RestError(_too_large(max_body_bytes), 413)
        return data

    @app.route("/v1/models/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def models_route(rest: str):
        match = _ROUTE.match(rest)
        if match is None:
            raise RestError(f"Malformed request: {request.method} /v1/models/{rest}; expected "
                            "/v1/models/NAME[/versions/V|/labels/L][/metadata|:predict]", 404)
        name, version, label = match["name"], match["version"], match["label"]
        verb = match["verb"]
        if verb is not None:
            if request.method != "POST":
                return error(f"Method {request.method} is not allowed for :{verb}; use POST", 405,
                             {"Allow": "POST"})
            if verb != "predict":
                servable = repository.resolve(name, version, label)
                raise RestError(f"keras-skel serve implements :predict only, not :{verb} (model {name} "
                                f"version {servable.version} has no classify/regress signatures)", 501)
            servable = repository.resolve(name, version, label)
            raw = read_body()
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise RestError(f"the request body is not valid JSON: {err}") from None
            return reply(repository.predict(servable, body))
        if request.method != "GET":
            return error(f"Method {request.method} is not allowed here; use GET (or POST to "
                         f"/v1/models/{name}:predict)", 405, {"Allow": "GET"})
        if match["metadata"]:
            return reply(repository.metadata(name, version, label))
        return reply(repository.status(name, version, label))

    return app


def _too_large(limit: int, length: int | None = None) -> str:
    size = f"of {length} bytes " if length is not None else ""
    return (f"the request body {size}is larger than the limit of {limit} bytes (keras-skel serve "
            "--max-body-mb); send fewer or smaller images per request")


# ----------------------------------------------------------------------------- waitress


def _json_error_channel():
    """A waitress channel whose own errors (413 before the body is read, 400 on a malformed
    request) are JSON `{"error": ...}` like the app's."""
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    class JsonErrorTask(ErrorTask):
        def execute(self):
            err = self.request.error
            if err.code == 413:
                limit = self.channel.server.adj.max_request_body_size - 1
                length = self.request.content_length or None
                message = _too_large(limit, length)
            else:
                message = f"{err.reason}: {err.body}"
            body = json.dumps({"error": message}).encode("utf-8")
            self.status = f"{err.code} {err.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonErrorChannel(HTTPChannel):
        error_task_class = JsonErrorTask

    return JsonErrorChannel


def _create_server(app, host: str, port: int, max_body_bytes: int, threads: int):
    from waitress.server import BaseWSGIServer, create_server

    try:
        server = create_server(app, host=host, port=port, threads=threads,
                               max_request_body_size=max_body_bytes + 1, ident="keras-skel",
                               clear_untrusted_proxy_headers=True)
    except OSError as err:
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}; choose another --port "
                          "or stop the program using it") from None
    channel = _json_error_channel()
    listeners = [server] if isinstance(server, BaseWSGIServer) else [
        s for s in server.map.values() if isinstance(s, BaseWSGIServer)]
    for listener in listeners:
        listener.channel_class = channel
    return server, listeners


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class ServerHandle:
    """A server running in a background thread (`start_server`); `stop()` ends it.

    Attributes:
        url: `http://host:port`.
        port: the port bound (useful with port 0).
        app: the Flask app.
    """

    def __init__(self, server, listeners, app, host: str):
        self._server = server
        self._listeners = listeners
        self.app = app
        self.port = int(listeners[0].effective_port)
        self.url = _url(host, self.port)
        self._thread = threading.Thread(target=server.run, name="keras-skel-serve", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Closes the listening socket and every connection, then waits for the workers."""
        if self._thread.is_alive():
            _close_from_loop(self._listeners)
            self._thread.join(timeout)
        self._server.task_dispatcher.shutdown(timeout=timeout)

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _close_from_loop(listeners) -> None:
    """Asks the waitress loop thread to close every socket (the listeners share one map); its
    loop then ends. Call it from another thread than the loop's."""
    from waitress import wasyncore

    socket_map = listeners[0]._map
    try:
        listeners[0].trigger.pull_trigger(lambda: wasyncore.close_all(socket_map))
    except (OSError, ValueError):
        pass  # already closed: a second signal, or stop() after the loop ended


def start_server(models: str | Path | ModelRepository, host: str = "127.0.0.1", port: int = 0,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, threads: int = 4,
                 config_file: str | Path | None = None) -> ServerHandle:
    """Starts the REST server in a background thread (tests, notebooks).

    Args:
        models: a models folder or a loaded `ModelRepository`.
        host: address to bind.
        port: port (0: a free one, see `.port`).
        max_body_bytes: larger request bodies get 413.
        threads: requests handled concurrently.
        config_file: a TF Serving `models.config` with version labels.

    Returns:
        A `ServerHandle`; use it as a context manager or call `stop()`.

    Example:
        >>> with start_server("saved_models") as server:  # doctest: +SKIP
        ...     print(server.url + "/v1/models/unet_shapes")
    """
    app = make_app(models, max_body_bytes, config_file)
    server, listeners = _create_server(app, host, port, max_body_bytes, threads)
    return ServerHandle(server, listeners, app, host)


def serve(models_dir: str | Path = "saved_models", host: str = "127.0.0.1", port: int = 8501,
          max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, threads: int = 4,
          config_file: str | Path | None = None) -> None:
    """Serves the models under `models_dir` until SIGINT (Ctrl+C) or SIGTERM; blocks.

    Prints the URL of every model, then serves; on a signal it stops accepting, lets running
    requests finish (up to 10 s) and returns.

    Args:
        models_dir: folder of exported models (`NAME/VERSION/`).
        host: address to bind; loopback unless you mean to expose the server.
        port: port (8501 is TF Serving's REST port; 0 picks a free one).
        max_body_bytes: larger request bodies get 413.
        threads: requests handled concurrently.
        config_file: a TF Serving `models.config` with version labels (default: see
            `find_models_config`).

    Raises:
        ModelNotFoundError: no SavedModel under `models_dir`.
        ConfigError: the port cannot be bound or the config file is invalid.

    Example:
        >>> serve("saved_models", port=8501)  # doctest: +SKIP
    """
    app = make_app(models_dir, max_body_bytes, config_file)
    server, listeners = _create_server(app, host, port, max_body_bytes, threads)
    url = _url(host, int(listeners[0].effective_port))
    repository: ModelRepository = app.repository
    for name in repository.names():
        loaded = [str(v) for v, s in sorted(repository.models[name].items()) if s.error is None]
        labels = ", ".join(f"{k}={v}" for k, v in sorted(repository.labels[name].items()))
        print(f"{url}/v1/models/{name}  (versions {', '.join(loaded) or 'none loaded'}; labels {labels})")
    if repository.config_file is not None:
        print(f"version labels from {repository.config_file}")
    print(f"Serving TF Serving's REST API on {url} (Ctrl+C to stop)", flush=True)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        def stop(signum, frame):
            # From a thread: the loop thread may hold the trigger's lock when the signal lands.
            threading.Thread(target=_close_from_loop, args=(listeners,), daemon=True).start()

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, stop)
    try:
        server.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.task_dispatcher.shutdown(timeout=10)
        print("keras-skel serve: stopped", file=sys.stderr, flush=True)

