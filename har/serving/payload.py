"""Request bodies → checked numpy arrays, with a precise 4xx for everything a client can get wrong.

The body is read once with a size cap, parsed by orjson and the small envelope fields validated by
pydantic in strict mode (no ``"50"`` → 50.0, no ``true`` → 1); the big arrays go from the parsed
lists into numpy in one ``np.asarray`` (~10× faster than pydantic on a list of floats). Counts are
checked on the list lengths *before* that conversion, so an over-cap request costs only the parse.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from har.config import ValidateParams
from har.serving.model import LoadedModel

log = logging.getLogger(__name__)

# orjson refuses deeper documents; Python's json (the NaN fallback) would recurse past the stack.
MAX_JSON_DEPTH = 1024
JSON_MEDIA_TYPE = "application/json"
# Status for a request whose client went away before it was read (nginx's convention): it is never
# sent, but the metrics count it under this code.
CLIENT_CLOSED = 499


class PayloadError(Exception):
    """A request the client must fix: becomes ``{"detail": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@dataclass(frozen=True)
class SensorLimits:
    """Physical ranges of the sensor channels: ``validate.acc_abs_max_g`` / ``gyro_abs_max_rad_s``,
    the same bounds the training data is validated against."""

    acc_abs_max_g: float
    gyro_abs_max_rad_s: float

    @classmethod
    def from_params(cls, validate: ValidateParams | None = None) -> SensorLimits:
        v = validate or ValidateParams()
        return cls(acc_abs_max_g=v.acc_abs_max_g, gyro_abs_max_rad_s=v.gyro_abs_max_rad_s)

    def for_channel(self, name: str) -> tuple[float, str]:
        """(|max|, unit) for a channel name: gyro* in rad/s, acc*/grav* in g; any other name gets
        the wider of the two, which still keeps the model's input (and so its output) finite."""
        low = name.lower()
        if "gyro" in low:
            return self.gyro_abs_max_rad_s, "rad/s"
        if "acc" in low or "grav" in low:
            return self.acc_abs_max_g, "g"
        return max(self.acc_abs_max_g, self.gyro_abs_max_rad_s), "units"

    def bounds(self, channels: list[str]) -> np.ndarray:
        return np.array([self.for_channel(c)[0] for c in channels], np.float32)


def check_content_type(request: Request) -> None:
    """415 unless the body is declared ``application/json``: a browser can send text/plain or a
    form cross-origin without a CORS preflight, never application/json."""
    raw = request.headers.get("content-type", "")
    media = raw.split(";", 1)[0].strip().lower()
    if media != JSON_MEDIA_TYPE:
        got = f"{raw!r}" if raw else "none"
        raise PayloadError(415, f"Content-Type must be {JSON_MEDIA_TYPE}; got {got}")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes by Content-Length *and* while streaming (a
    chunked or lying client cannot get past the cap). A client that goes away mid-upload costs one
    log line (not a traceback) and a 499 in the metrics."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise PayloadError(400, f"invalid Content-Length header {declared!r}") from None
        if n > limit:
            raise PayloadError(413, f"request body is {n} bytes; the limit is {limit} bytes "
                                    "(serve.max_body_bytes); send fewer windows per request")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadError(413, f"request body exceeds the limit of {limit} bytes "
                                        "(serve.max_body_bytes); send fewer windows per request")
            chunks.append(chunk)
    except ClientDisconnect:
        why = ("read timeout (serve.read_timeout_s)" if request.scope.get("har.read_timeout")
               else "client closed the connection")
        client = request.client.host if request.client else "?"
        log.warning("%s %s from %s: upload aborted after %d of %s bytes: %s", request.method,
                    request.url.path, client, size, declared or "?", why)
        raise PayloadError(CLIENT_CLOSED, f"upload aborted: {why}") from None
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """JSON → Python objects; 422 for an empty body, invalid JSON or nesting beyond MAX_JSON_DEPTH."""
    if not body.strip():
        raise PayloadError(422, "empty request body; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        if "depth limit" in str(err):
            raise PayloadError(422, f"request body nests JSON more than {MAX_JSON_DEPTH} levels deep; "
                                    "expected at most 4 (object → windows → samples → values)") from None
    # orjson is strict JSON; Python's json also reads NaN/Infinity literals, which clients such
    # as Python's json.dumps emit. Accept them here so the error below can say "NaN" precisely.
    try:
        return json.loads(body)
    except RecursionError:
        raise PayloadError(422, "request body nests JSON too deeply; expected at most 4 levels") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise PayloadError(422, f"request body is not valid JSON: {err}") from None


async def read_json_body(request: Request, limit: int) -> Any:
    """``read_body`` then ``parse_json`` (the name the API module had before the split)."""
    return parse_json(await read_body(request, limit))


def format_validation_errors(errors: Any) -> str:
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def envelope(model: type[BaseModel], obj: Any) -> Any:
    """The pydantic envelope (every field but the arrays), strict; 422 naming the fields."""
    if not isinstance(obj, dict):
        raise PayloadError(422, f"expected a JSON object, got {type(obj).__name__}")
    try:
        return model.model_validate(obj)
    except ValidationError as err:
        raise PayloadError(422, format_validation_errors(err.errors())) from None


# Values converted per np.asarray call (~2 ms): between calls the interpreter can hand the GIL to the
# event loop, which a single call over a megabyte body would hold for hundreds of milliseconds.
CONVERT_CHUNK_VALUES = 50_000


def _to_array(value: list[Any]) -> np.ndarray:
    """``np.asarray(value)`` in chunks of whole rows; ValueError when the chunks disagree in shape
    (ragged). No dtype: numpy then reports strings/None as their own dtypes instead of coercing
    "1.5"; a chunk that is not numeric is returned as it is, for the caller's message."""
    per_row, probe = 1, value[0] if value else None
    while isinstance(probe, list) and probe:
        per_row, probe = per_row * len(probe), probe[0]
    rows = max(1, CONVERT_CHUNK_VALUES // per_row)
    if len(value) <= rows:
        return np.asarray(value)
    parts = []
    for i in range(0, len(value), rows):
        part = np.asarray(value[i:i + rows])
        if part.dtype.kind not in "fiu":
            return part
        if parts and (part.ndim != parts[0].ndim or part.shape[1:] != parts[0].shape[1:]):
            raise ValueError("inhomogeneous shape across rows")
        parts.append(part)
    return np.concatenate(parts)


def numeric_array(value: Any, field: str, ndim: int, shape_hint: str) -> np.ndarray:
    """Nested JSON lists → float32 array of ``ndim`` dims; PayloadError naming the problem."""
    if not isinstance(value, list):
        raise PayloadError(422, f"{field}: expected a nested list ({shape_hint}), "
                                f"got {type(value).__name__}")
    try:
        arr = _to_array(value)
    except (ValueError, RecursionError) as err:
        what = "nested too deeply" if "maximum number of dimension" in str(err) else "ragged nested lists"
        raise PayloadError(422, f"{field}: {what}; expected a rectangular {shape_hint} array") from None
    if arr.size == 0:
        raise PayloadError(422, f"{field}: empty; expected {shape_hint}")
    if arr.ndim != ndim:
        raise PayloadError(422, f"{field}: expected {ndim} nesting levels ({shape_hint}), got "
                                f"shape {list(arr.shape)}")
    if arr.dtype.kind not in "fiu":
        bad = "null" if arr.dtype == object and any(v is None for v in arr.ravel().tolist()) \
            else "non-numeric"
        raise PayloadError(422, f"{field}: contains {bad} values; only finite numbers are accepted")
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
        out = arr.astype(np.float32)
    finite = np.isfinite(out)
    if not finite.all():
        idx = np.unravel_index(int(np.argmin(finite)), out.shape)
        where = "".join(f"[{i}]" for i in idx)
        raise PayloadError(422, f"{field}{where}: NaN or infinite value (or beyond float32 range); "
                                "only finite numbers are accepted")
    return out


def check_ranges(arr: np.ndarray, channels: list[str], field: str, limits: SensorLimits) -> None:
    """422 naming the first value outside its channel's physical range (``arr``'s last axis is in
    ``channels`` order). Values beyond these ranges are sensor faults or garbage, and large enough
    ones overflow inside the model into NaN probabilities."""
    bounds = limits.bounds(channels)
    over = np.abs(arr) > bounds
    if over.any():
        idx = np.unravel_index(int(np.argmax(over)), arr.shape)
        name = channels[idx[-1]]
        bound, unit = limits.for_channel(name)
        where = "".join(f"[{i}]" for i in idx)
        raise PayloadError(422, f"{field}{where}: {float(arr[idx]):g} is outside the physical range of "
                                f"channel {name!r} (|value| ≤ {bound:g} {unit}, validate params)")


def channel_order(given: list[str], model: LoadedModel) -> np.ndarray | None:
    """Column indices that reorder ``given`` into the model's channel order (None if identical)."""
    expected = model.spec.channels
    if len(set(given)) != len(given):
        dup = sorted({c for c in given if given.count(c) > 1})
        raise PayloadError(422, f"channels: duplicate names {dup}")
    unknown = [c for c in given if c not in expected]
    if unknown:
        raise PayloadError(422, f"channels: unknown {unknown}; the model uses {expected}")
    missing = [c for c in expected if c not in given]
    if missing:
        raise PayloadError(422, f"channels: missing required {missing}; the model uses {expected}")
    if given == expected:
        return None
    pos = {c: i for i, c in enumerate(given)}
    return np.array([pos[c] for c in expected])


def check_columns(arr: np.ndarray, channels: list[str], field: str) -> None:
    if arr.shape[-1] != len(channels):
        raise PayloadError(422, f"{field}: each sample has {arr.shape[-1]} values but "
                                f"{len(channels)} channels are named {channels}")
