"""TF Serving's REST JSON ↔ tensors: the one encoding both `server.py` and `client.py` use.

It follows TensorFlow Serving's documented REST API
(https://www.tensorflow.org/tfx/serving/api_rest):

- a predict request is `{"signature_name": ..., "instances": [...]}` (row format: one item per
  batch element; an item is the value of the only input, or an object of named inputs) or
  `{"signature_name": ..., "inputs": ...}` (columnar: the only input's whole value, or an object
  of named inputs), never both;
- binary strings are `{"b64": "<base64>"}`; output tensors whose name ends in `_bytes` are
  returned that way;
- a row-format response is `{"predictions": [...]}` (a list of values when the signature has
  one output, a list of objects with one key per output otherwise); a columnar response is
  `{"outputs": ...}` (the value itself for one output, an object of outputs otherwise);
- `NaN`, `Infinity` and `-Infinity` are accepted and written as bare tokens (Python's `json`
  does both), as TF Serving does.

Only NumPy is needed here; TensorFlow never is.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from keras_skel.errors import KerasSkelError

__all__ = [
    "RestError",
    "TensorInfo",
    "DTYPES",
    "encode_binary",
    "is_binary",
    "to_json",
    "from_json",
    "parse_predict_request",
    "format_predict_response",
    "make_predict_request",
    "parse_predict_response",
    "tensor_info_from_json",
    "signature_from_metadata",
]

# TF DataType enum names (as TF Serving's metadata writes them) → NumPy dtype names; "string"
# stands for DT_STRING (bytes).
DTYPES = {
    "DT_FLOAT": "float32",
    "DT_DOUBLE": "float64",
    "DT_HALF": "float16",
    "DT_INT8": "int8",
    "DT_INT16": "int16",
    "DT_INT32": "int32",
    "DT_INT64": "int64",
    "DT_UINT8": "uint8",
    "DT_UINT16": "uint16",
    "DT_UINT32": "uint32",
    "DT_UINT64": "uint64",
    "DT_BOOL": "bool",
    "DT_STRING": "string",
}
_TF_NAMES = {value: key for key, value in DTYPES.items()}


class RestError(KerasSkelError, ValueError):
    """A request the REST API refuses, with the HTTP status to answer.

    Args:
        message: what was wrong, for the `{"error": ...}` body.
        status: HTTP status code (400 unless said otherwise).
    """

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class TensorInfo:
    """Name, dtype and shape of one signature input or output.

    Attributes:
        name: the key in the signature (`images`, `skeleton_png_bytes`, ...).
        dtype: a NumPy dtype name (`float32`, `uint8`, `bool`, ...) or `string`.
        shape: dims with None for any size, or None for unknown rank.
    """

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None

    @property
    def tf_dtype(self) -> str:
        """The TF enum name, e.g. `DT_FLOAT`."""
        return _TF_NAMES.get(self.dtype, self.dtype)

    def shape_text(self) -> str:
        """The shape as `[-1, -1, -1, 1]` (-1: any size), TF Serving's notation."""
        if self.shape is None:
            return "<any rank>"
        return "[" + ", ".join("-1" if d is None else str(d) for d in self.shape) + "]"


def encode_binary(data: bytes) -> dict[str, str]:
    """`{"b64": ...}`: how binary strings travel in TF Serving's JSON.

    Example:
        >>> encode_binary(b"\\x89PNG")
        {'b64': 'iVBORw=='}
    """
    return {"b64": base64.b64encode(bytes(data)).decode("ascii")}


def is_binary(value: Any) -> bool:
    """Whether `value` is a `{"b64": ...}` object (and not an object of named tensors)."""
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def to_json(value: Any, binary: bool = False) -> Any:
    """A tensor (NumPy array, scalar, bytes, nested lists of them) as a JSON-ready value.

    Args:
        value: the tensor.
        binary: encode strings as `{"b64": ...}` (TF Serving does it for outputs whose name ends
            in `_bytes`); otherwise strings are UTF-8 text, and bytes that are not valid UTF-8
            fall back to `{"b64": ...}`.

    Returns:
        Nested lists of Python numbers, bools, strings or `{"b64": ...}` objects.

    Example:
        >>> to_json(np.array([[1, 0]], np.uint8))
        [[1, 0]]
    """
    if isinstance(value, (bytes, bytearray, np.bytes_)):
        if binary:
            return encode_binary(value)
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return encode_binary(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [to_json(item, binary) for item in value] if value.ndim else to_json(value.item(), binary)
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [to_json(item, binary) for item in value]
    return value


def _describe(value: Any) -> str:
    """What kind of JSON value this is, for error messages."""
    if is_binary(value):
        return 'a {"b64": ...} object'
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return f"a string ({value[:20]!r})"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _first_leaf(value: Any, accept) -> Any:
    """The first leaf of nested lists for which `accept(leaf)` is False (None if all pass)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif not accept(item):
            return item
    return None


def _strings(value: Any, where: str) -> np.ndarray:
    """Nested lists of str / `{"b64": ...}` → object array of bytes."""

    def walk(item):
        if isinstance(item, list):
            parts = [walk(v) for v in item]
            shapes = {shape for shape, _ in parts}
            if len(shapes) > 1:
                raise RestError(f"{where}: nested lists of different lengths (not a rectangular tensor)")
            inner = parts[0][0] if parts else ()
            return (len(item), *inner), [leaf for _, leaves in parts for leaf in leaves]
        if is_binary(item):
            text = item["b64"]
            if not isinstance(text, str):
                raise RestError(f'{where}: the value of "b64" must be a base64 string, got {_describe(text)}')
            try:
                return (), [base64.b64decode(text, validate=True)]
            except (binascii.Error, ValueError):
                raise RestError(f'{where}: "b64" holds invalid base64 ({text[:20]!r}...)') from None
        if isinstance(item, str):
            return (), [item.encode("utf-8")]
        raise RestError(f'{where}: a DT_STRING tensor takes strings or {{"b64": ...}} objects, got {_describe(item)}')

    shape, leaves = walk(value)
    array = np.empty(len(leaves), dtype=object)
    array[:] = leaves
    return array.reshape(shape)


def _numbers(value: Any, dtype: str, where: str) -> np.ndarray:
    """Nested lists of JSON numbers (or bools for DT_BOOL) → an array of `dtype`."""
    tf_name = _TF_NAMES.get(dtype, dtype)
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):
        raise RestError(f"{where}: nested lists of different lengths (not a rectangular tensor)") from None
    if array.dtype == object or array.dtype.kind in "SU":
        bad = _first_leaf(value, lambda leaf: isinstance(leaf, (int, float)) and not isinstance(leaf, bool))
        found = _describe(bad) if bad is not None else "values of mixed types or huge integers"
        raise RestError(f"{where}: a {tf_name} tensor takes numbers, got {found}")
    if dtype == "bool":
        if array.dtype.kind != "b":
            raise RestError(f"{where}: a DT_BOOL tensor takes true/false, got numbers")
        return array
    if array.dtype.kind == "b":
        raise RestError(f"{where}: a {tf_name} tensor takes numbers, got true/false")
    target = np.dtype(dtype)
    if target.kind in "iu":
        if array.dtype.kind == "f":
            if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
                raise RestError(f"{where}: a {tf_name} tensor takes whole numbers, got fractions")
        info = np.iinfo(target)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise RestError(f"{where}: values {array.min()}..{array.max()} do not fit {tf_name} "
                            f"({info.min}..{info.max})")
    return array.astype(target)


def from_json(value: Any, info: TensorInfo | None = None, where: str = "value") -> np.ndarray:
    """A JSON value as a NumPy array of the dtype `info` names (inferred without `info`).

    Args:
        value: nested lists of numbers, bools, strings or `{"b64": ...}` objects.
        info: the tensor it must become; None infers (`{"b64": ...}`/strings → bytes).
        where: names the value in error messages.

    Returns:
        The array (object dtype holding `bytes` for strings).

    Raises:
        RestError: (400) the value does not fit the dtype, or is not rectangular.

    Example:
        >>> from_json([[0, 1]], TensorInfo("x", "float32", (None, 2))).dtype
        dtype('float32')
    """
    dtype = info.dtype if info is not None else None
    if dtype is None:
        leaf = _first_leaf(value, lambda item: not (is_binary(item) or isinstance(item, str)))
        dtype = "string" if leaf is None and value != [] else None
        if dtype is None:
            return np.asarray(value)
    if dtype == "string":
        return _strings(value, where)
    return _numbers(value, dtype, where)


def _check_shape(array: np.ndarray, info: TensorInfo, where: str, row: bool) -> None:
    if info.shape is None:
        return
    expected = info.shape
    fits = array.ndim == len(expected) and all(e is None or e == d for e, d in zip(expected, array.shape))
    if not fits:
        got = "[" + ", ".join(str(d) for d in array.shape) + "]"
        hint = ""
        if row and len(expected) > 1:
            hint = (" (in row format each item of 'instances' is one batch element of shape ["
                    + ", ".join("-1" if d is None else str(d) for d in expected[1:]) + "])")
        raise RestError(f"{where} must have shape {info.shape_text()} (-1: any size), got {got}{hint}")
    if len(expected) > 1 and 0 in array.shape[1:]:
        raise RestError(f"{where} has an empty dimension: shape {list(array.shape)}")


def _ragged_rows(items: list, where: str) -> RestError:
    """The error for row-format items that do not stack, naming two differing shapes."""
    shapes = []
    for index, item in enumerate(items):
        try:
            shapes.append((index, np.shape(item)))
        except ValueError:
            return RestError(f"{where}: item {index} of 'instances' is not a rectangular tensor")
    first = shapes[0]
    other = next((s for s in shapes if s[1] != first[1]), None)
    if other is None:
        return RestError(f"{where}: the items of 'instances' are not rectangular tensors")
    return RestError(
        f"{where}: all items of 'instances' must have the same shape, but item {first[0]} has shape "
        f"{list(first[1])} and item {other[0]} has {list(other[1])}; send tensors of different shapes in "
        "separate requests (or PNG bytes to the predict_png signature)"
    )


def _convert(value: Any, info: TensorInfo, where: str, row: bool) -> np.ndarray:
    array = from_json(value, info, where)
    _check_shape(array, info, where, row)
    return array


def parse_predict_request(body: Any, inputs: Mapping[str, TensorInfo], signature_name: str = "serving_default"
                          ) -> tuple[dict[str, np.ndarray], bool]:
    """Server side: a decoded `:predict` body → input arrays for the signature.

    Args:
        body: the decoded JSON request.
        inputs: the signature's inputs by name.
        signature_name: named in error messages.

    Returns:
        `(arrays by input name, row_format)`.

    Raises:
        RestError: (400) anything that does not fit the signature: missing or unknown input
            names, dtype, shape, ragged nesting, bad base64.

    Example:
        >>> spec = {"x": TensorInfo("x", "float32", (None, 2))}
        >>> arrays, row = parse_predict_request({"instances": [[1, 2], [3, 4]]}, spec)
        >>> arrays["x"].shape, row
        ((2, 2), True)
    """
    if not isinstance(body, dict):
        raise RestError(f"the request body must be a JSON object, got {_describe(body)}")
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows == has_columns:
        raise RestError("the request must have either 'instances' (row format) or 'inputs' (columnar format)"
                        + (", not both" if has_rows else ""))
    names = list(inputs)
    where = f"signature '{signature_name}'"
    if has_rows:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise RestError(f"'instances' must be a list (one item per batch element), got {_describe(instances)}")
        if not instances:
            raise RestError("'instances' is empty")
        named = [isinstance(item, dict) and not is_binary(item) for item in instances]
        if any(named) and not all(named):
            raise RestError("'instances' mixes objects of named inputs with plain values")
        if all(named):
            for index, item in enumerate(instances):
                if set(item) != set(names):
                    raise RestError(_names_message(f"item {index} of 'instances'", set(item), names, where))
            columns = {name: [item[name] for item in instances] for name in names}
        else:
            if len(names) != 1:
                raise RestError(f"{where} has inputs {', '.join(names)}: each item of 'instances' must be an "
                                "object with one key per input")
            columns = {names[0]: instances}
        arrays = {}
        for name, value in columns.items():
            label = f"input '{name}' of {where}"
            try:
                arrays[name] = _convert(value, inputs[name], label, row=True)
            except RestError as err:
                if "different lengths" in err.message:
                    raise _ragged_rows(value, label) from None
                raise
        return arrays, True

    value = body["inputs"]
    if isinstance(value, dict) and not is_binary(value):
        if set(value) != set(names):
            raise RestError(_names_message("'inputs'", set(value), names, where))
        columns = value
    else:
        if len(names) != 1:
            raise RestError(f"{where} has inputs {', '.join(names)}: 'inputs' must be an object with one key "
                            "per input")
        columns = {names[0]: value}
    arrays = {name: _convert(columns[name], inputs[name], f"input '{name}' of {where}", row=False)
              for name in names}
    return arrays, False


def _names_message(what: str, given: set, names: list[str], where: str) -> str:
    missing = [n for n in names if n not in given]
    unknown = sorted(given - set(names))
    parts = []
    if missing:
        parts.append("lacks " + ", ".join(repr(n) for n in missing))
    if unknown:
        parts.append("has unknown " + ", ".join(repr(n) for n in unknown))
    return f"{what} {' and '.join(parts)}; {where} takes {', '.join(repr(n) for n in names)}"


def format_predict_response(outputs: Mapping[str, np.ndarray], row: bool) -> dict:
    """Server side: output arrays → `{"predictions": ...}` (row) or `{"outputs": ...}` (columnar).

    One output: its value without the name; several: one key per output (an object per batch
    element in row format). Outputs named `*_bytes` are written as `{"b64": ...}`.

    Raises:
        RestError: (500) row format with outputs whose batch sizes differ.

    Example:
        >>> format_predict_response({"y": np.array([1.5, 2.0], np.float32)}, row=True)
        {'predictions': [1.5, 2.0]}
    """
    encoded = {name: to_json(np.asarray(value), binary=name.endswith("_bytes")) for name, value in outputs.items()}
    if not row:
        return {"outputs": next(iter(encoded.values())) if len(encoded) == 1 else encoded}
    sizes = {name: (np.shape(value)[0] if np.ndim(value) else None) for name, value in outputs.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise RestError(f"outputs have different batch sizes {sizes}: use the columnar format ('inputs')", 500)
    if len(encoded) == 1:
        return {"predictions": next(iter(encoded.values()))}
    count = next(iter(sizes.values()))
    return {"predictions": [{name: encoded[name][i] for name in encoded} for i in range(count)]}


def make_predict_request(instances: Any = None, inputs: Any = None, signature_name: str | None = None) -> dict:
    """Client side: a `:predict` body from NumPy arrays / bytes (exactly one of `instances`, `inputs`).

    Args:
        instances: row format: a sequence (or array) with one item per batch element; an item
            is the only input's value or a dict of named inputs.
        inputs: columnar format: the only input's whole value, or a dict of named inputs.
        signature_name: the signature (TF Serving's default when None).

    Returns:
        The JSON-ready request; `bytes` become `{"b64": ...}`.

    Example:
        >>> make_predict_request(inputs=[b"ab"], signature_name="predict_png")
        {'signature_name': 'predict_png', 'inputs': [{'b64': 'YWI='}]}
    """
    if (instances is None) == (inputs is None):
        raise ValueError("pass exactly one of instances= (row format) or inputs= (columnar format)")

    def encode(value):
        if isinstance(value, dict) and not is_binary(value):
            return {name: encode(v) for name, v in value.items()}
        return to_json(value, binary=True)

    body: dict[str, Any] = {}
    if signature_name is not None:
        body["signature_name"] = signature_name
    if instances is not None:
        body["instances"] = [encode(item) for item in instances]
    else:
        body["inputs"] = encode(inputs)
    return body


def parse_predict_response(body: Any, outputs: Mapping[str, TensorInfo]) -> dict[str, np.ndarray]:
    """Client side: `{"predictions": ...}` / `{"outputs": ...}` → arrays by output name.

    Args:
        body: the decoded JSON response.
        outputs: the signature's outputs (from the metadata), for names and dtypes.

    Returns:
        One array per output, of the signature's dtype (bytes in object arrays for strings).

    Raises:
        RestError: the response does not have the form TF Serving gives.
    """
    names = list(outputs)
    if not isinstance(body, dict) or not ({"predictions", "outputs"} & set(body)):
        raise RestError(f"not a predict response (expected 'predictions' or 'outputs'): {str(body)[:200]}")
    if "predictions" in body:
        rows = body["predictions"]
        if len(names) == 1 and not (rows and isinstance(rows[0], dict) and not is_binary(rows[0])):
            columns = {names[0]: rows}
        else:
            columns = {name: [row[name] for row in rows] for name in rows[0]} if rows else {}
    else:
        value = body["outputs"]
        columns = value if isinstance(value, dict) and not is_binary(value) else {names[0]: value}
    return {name: from_json(value, outputs.get(name), f"output '{name}'") for name, value in columns.items()}


def tensor_info_from_json(name: str, value: Mapping[str, Any]) -> TensorInfo:
    """A `TensorInfo` from TF Serving's metadata JSON of one tensor.

    Example:
        >>> tensor_info_from_json("x", {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1"}]}})
        TensorInfo(name='x', dtype='float32', shape=(None,))
    """
    shape_json = value.get("tensor_shape", {})
    if shape_json.get("unknown_rank"):
        shape = None
    else:
        dims = [int(d.get("size", -1)) for d in shape_json.get("dim", [])]
        shape = tuple(None if d < 0 else d for d in dims)
    return TensorInfo(name, DTYPES.get(value.get("dtype", ""), value.get("dtype", "")), shape)


def signature_from_metadata(metadata: Mapping[str, Any], signature_name: str
                            ) -> tuple[dict[str, TensorInfo], dict[str, TensorInfo]]:
    """`(inputs, outputs)` of one signature from a `/metadata` response.

    Raises:
        KeyError: the metadata has no such signature.
    """
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    signature = signatures[signature_name]
    inputs = {name: tensor_info_from_json(name, v) for name, v in signature.get("inputs", {}).items()}
    outputs = {name: tensor_info_from_json(name, v) for name, v in signature.get("outputs", {}).items()}
    return inputs, outputs
